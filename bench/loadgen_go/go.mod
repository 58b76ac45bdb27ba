module tessera/bench/loadgen

go 1.21
