"""The livecart benchmark: `python -m bench` (or `make bench`) measures and writes bench/REPORT.md.

Load always comes from processes of its own (bench.loadgen, bench.httpload), never from
inside the server process; the server under test is a real `livecart serve`.
"""
