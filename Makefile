.PHONY: up test bench
up:
	bash scripts/up.sh
test:
	bash scripts/test.sh
bench:
	.venv/bin/python benchmarks/pipeline.py
