"""The suite runs the demo: the simulator is a bronze source, as `scripts/up.sh` has it.

Set here, before any test module imports the definitions (which read the settings once).
Tests of a real lake run the definitions in a subprocess without it.
"""

import os

os.environ.setdefault("TRYBANK_SIMULATOR_ENABLED", "true")
