// A fixed-rate (open loop) HTTP load generator for bench/soak.py: each connection follows its own
// schedule and a request's latency counts from when it was due (as wrk2 does), so a stalled server
// shows up as latency, not as a lower rate. Go instead of Python so that, on a 2-core machine, the
// load generator does not take the CPU the server under test needs.
//
//	loadgen -url http://127.0.0.1:8000/features/user/%d?feature_service=ads_ranking -ids 100000 \
//	        -rate 2000 -seconds 60 -conns 32
//
// It prints one JSON object: ok, failed, timed_out and latency percentiles in ms.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand"
	"net/http"
	"os"
	"sort"
	"sync"
	"time"
)

func main() {
	url := flag.String("url", "", "URL with one %d for a random id")
	ids := flag.Int("ids", 100000, "ids are drawn uniformly from 1..ids")
	rate := flag.Float64("rate", 2000, "requests per second, all connections together")
	seconds := flag.Float64("seconds", 60, "how long to send")
	conns := flag.Int("conns", 32, "connections")
	timeout := flag.Duration("timeout", 5*time.Second, "a request unanswered this long counts as timed out")
	flag.Parse()
	if *url == "" {
		fmt.Fprintln(os.Stderr, "loadgen: -url is required")
		os.Exit(2)
	}
	interval := time.Duration(float64(time.Second) * float64(*conns) / *rate)
	start := time.Now()
	end := start.Add(time.Duration(*seconds * float64(time.Second)))
	var mu sync.Mutex
	var latencies []float64
	ok, failed, timedOut := 0, 0, 0
	var wg sync.WaitGroup
	for c := 0; c < *conns; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			client := &http.Client{Timeout: *timeout, Transport: &http.Transport{MaxIdleConnsPerHost: 1, MaxConnsPerHost: 1}}
			rng := rand.New(rand.NewSource(int64(c) + 1))
			local := make([]float64, 0, int(*rate**seconds / float64(*conns))+1)
			lok, lfailed, ltimed := 0, 0, 0
			// Connections start spread over one interval, so the rate is even.
			due := start.Add(interval * time.Duration(c) / time.Duration(*conns))
			for due.Before(end) {
				if wait := time.Until(due); wait > 0 {
					time.Sleep(wait)
				}
				resp, err := client.Get(fmt.Sprintf(*url, rng.Intn(*ids)+1))
				if err != nil {
					if e, isTimeout := err.(interface{ Timeout() bool }); isTimeout && e.Timeout() {
						ltimed++
					} else {
						lfailed++
					}
				} else {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode == 200 {
						lok++
						local = append(local, float64(time.Since(due))/float64(time.Millisecond))
					} else {
						lfailed++
					}
				}
				due = due.Add(interval)
			}
			mu.Lock()
			latencies = append(latencies, local...)
			ok, failed, timedOut = ok+lok, failed+lfailed, timedOut+ltimed
			mu.Unlock()
		}(c)
	}
	wg.Wait()
	sort.Float64s(latencies)
	pct := func(p float64) float64 {
		if len(latencies) == 0 {
			return 0
		}
		i := int(p / 100 * float64(len(latencies)-1))
		return latencies[i]
	}
	json.NewEncoder(os.Stdout).Encode(map[string]any{
		"ok": ok, "failed": failed, "timed_out": timedOut,
		"p50_ms": pct(50), "p99_ms": pct(99), "max_ms": pct(100),
	})
}
