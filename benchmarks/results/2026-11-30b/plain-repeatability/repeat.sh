#!/bin/bash
# Repeatability of the plain reference: sequential single loops vs interleaved rounds, two passes each, alternated
cd /work/main
F=$(ls /tmp/q/rep/*.onnx)
for pass in 1 2; do
  taskset -c 1 .venv/bin/python -m nas.latency._plain $F --json > /tmp/q/rep/seq-$pass.jsonl
  taskset -c 1 .venv/bin/python -m nas.latency._plain $F --rounds 5 --json > /tmp/q/rep/int-$pass.jsonl
done
touch /tmp/q/rep/done
