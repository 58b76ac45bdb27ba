// A fixed-rate (open loop) HTTP load generator for bench/soak.py: each connection follows its own
// schedule and a request's latency counts from when it was due (as wrk2 does), so a stalled server
// shows up as latency, not as a lower rate. Go instead of Python so that, on a 2-core machine, the
// load generator does not take the CPU the server under test needs.
//
// It speaks HTTP/1.1 keep-alive over plain TCP itself: net/http's client cost about 90 us of CPU
// per request against 55 here (a timer, two goroutines per connection, header maps), a tenth of a
// core at 2,000 requests/s that the server under test then lacks. The answers it reads are the API's:
// a status line, headers with Content-Length, a body.
//
//	loadgen -url http://127.0.0.1:8000/features/user/%d?feature_service=ads_ranking -ids 100000 \
//	        -rate 2000 -seconds 60 -conns 32
//
// It prints one JSON object: ok, failed, timed_out, latency percentiles in ms and, with
// -worst-seconds, the seconds with the most requests over -slow.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math/rand"
	"net"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// conn is one keep-alive connection; a failed request closes it and the next one dials again.
type conn struct {
	addr    string
	timeout time.Duration
	c       net.Conn
	r       *bufio.Reader
}

var errStatus = errors.New("status not 200")

func (k *conn) get(request []byte) error {
	if k.c == nil {
		c, err := net.DialTimeout("tcp", k.addr, k.timeout)
		if err != nil {
			return err
		}
		k.c, k.r = c, bufio.NewReaderSize(c, 16384)
	}
	k.c.SetDeadline(time.Now().Add(k.timeout))
	if _, err := k.c.Write(request); err != nil {
		k.close()
		return err
	}
	status, err := k.readResponse()
	if err != nil {
		k.close()
		return err
	}
	if status != 200 {
		return errStatus
	}
	return nil
}

func (k *conn) readResponse() (int, error) {
	line, err := k.r.ReadSlice('\n')
	if err != nil {
		return 0, err
	}
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.1 ")) {
		return 0, fmt.Errorf("bad status line %q", line)
	}
	status, err := strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, err
	}
	length := -1
	for {
		h, err := k.r.ReadSlice('\n')
		if err != nil {
			return 0, err
		}
		if len(h) <= 2 {
			break
		}
		if len(h) > 15 && bytes.EqualFold(h[:15], []byte("content-length:")) {
			if length, err = strconv.Atoi(string(bytes.TrimSpace(h[15:]))); err != nil {
				return 0, err
			}
		}
	}
	if length < 0 {
		return 0, errors.New("no Content-Length")
	}
	_, err = k.r.Discard(length)
	return status, err
}

func (k *conn) close() {
	if k.c != nil {
		k.c.Close()
		k.c = nil
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func main() {
	target := flag.String("url", "", "URL with one %d for a random id")
	ids := flag.Int("ids", 100000, "ids are drawn uniformly from 1..ids")
	rate := flag.Float64("rate", 2000, "requests per second, all connections together")
	seconds := flag.Float64("seconds", 60, "how long to send")
	conns := flag.Int("conns", 32, "connections")
	timeout := flag.Duration("timeout", 5*time.Second, "a request unanswered this long counts as timed out")
	worst := flag.Int("worst-seconds", 0, "also list this many seconds with the most requests over -slow")
	slow := flag.Duration("slow", 5*time.Millisecond, "what -worst-seconds counts as slow")
	flag.Parse()
	if *target == "" {
		fmt.Fprintln(os.Stderr, "loadgen: -url is required")
		os.Exit(2)
	}
	// Split by hand: the %d placeholder is not a valid URL escape, so net/url would refuse it.
	rest, isHTTP := strings.CutPrefix(*target, "http://")
	host, path, hasPath := strings.Cut(rest, "/")
	if !isHTTP || host == "" || !hasPath || strings.Count(path, "%d") != 1 {
		fmt.Fprintf(os.Stderr, "loadgen: -url must be http://host:port/path with one %%d\n")
		os.Exit(2)
	}
	// One scheduler thread: a second would only spin looking for work and take the server's CPU.
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(1)
	}
	// The request's format, built once: only the id changes from one request to the next.
	requestFormat := "GET /" + path + " HTTP/1.1\r\nHost: " + host + "\r\n\r\n"
	interval := time.Duration(float64(time.Second) * float64(*conns) / *rate)
	start := time.Now()
	end := start.Add(time.Duration(*seconds * float64(time.Second)))
	var mu sync.Mutex
	var latencies []float64
	slowBySecond := map[int64]int{} // unix second a slow request was due -> how many
	ok, failed, timedOut := 0, 0, 0
	var firstErr error
	var wg sync.WaitGroup
	for c := 0; c < *conns; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			k := &conn{addr: host, timeout: *timeout}
			defer k.close()
			rng := rand.New(rand.NewSource(int64(c) + 1))
			local := make([]float64, 0, int(*rate**seconds/float64(*conns))+1)
			lok, lfailed, ltimed := 0, 0, 0
			lslow := map[int64]int{}
			var lerr error
			request := make([]byte, 0, 256)
			// Connections start spread over one interval, so the rate is even.
			due := start.Add(interval * time.Duration(c) / time.Duration(*conns))
			for due.Before(end) {
				if wait := time.Until(due); wait > 0 {
					time.Sleep(wait)
				}
				request = fmt.Appendf(request[:0], requestFormat, rng.Intn(*ids)+1)
				err := k.get(request)
				took := time.Since(due)
				switch {
				case err == nil:
					lok++
					local = append(local, float64(took)/float64(time.Millisecond))
				case isTimeout(err):
					ltimed++
				default:
					lfailed++
				}
				if err != nil || took > *slow {
					lslow[due.Unix()]++
				}
				if err != nil && lerr == nil {
					lerr = err
				}
				due = due.Add(interval)
			}
			mu.Lock()
			latencies = append(latencies, local...)
			ok, failed, timedOut = ok+lok, failed+lfailed, timedOut+ltimed
			if firstErr == nil {
				firstErr = lerr
			}
			for second, n := range lslow {
				slowBySecond[second] += n
			}
			mu.Unlock()
		}(c)
	}
	wg.Wait()
	if firstErr != nil {
		fmt.Fprintf(os.Stderr, "loadgen: first error: %v\n", firstErr)
	}
	sort.Float64s(latencies)
	type slowSecond struct {
		At   int64 `json:"unix_s"`
		Slow int   `json:"slow"`
	}
	worstSeconds := make([]slowSecond, 0, len(slowBySecond))
	for at, n := range slowBySecond {
		worstSeconds = append(worstSeconds, slowSecond{at, n})
	}
	sort.Slice(worstSeconds, func(i, j int) bool { return worstSeconds[i].Slow > worstSeconds[j].Slow })
	if len(worstSeconds) > *worst {
		worstSeconds = worstSeconds[:*worst]
	}
	pct := func(p float64) float64 {
		if len(latencies) == 0 {
			return 0
		}
		i := int(p / 100 * float64(len(latencies)-1))
		return latencies[i]
	}
	json.NewEncoder(os.Stdout).Encode(map[string]any{
		"ok": ok, "failed": failed, "timed_out": timedOut,
		"p50_ms": pct(50), "p99_ms": pct(99), "max_ms": pct(100), "worst_seconds": worstSeconds,
	})
}
