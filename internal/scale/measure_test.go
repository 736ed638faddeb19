package scale_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// measure runs fn from clients goroutines for d and returns requests per
// second and the 99th percentile latency.
func measure(t *testing.T, clients int, d time.Duration, fn func(c, i int) error) (float64, time.Duration) {
	t.Helper()
	var (
		mu   sync.Mutex
		lat  []time.Duration
		n    atomic.Int64
		wg   sync.WaitGroup
		ferr atomic.Value
	)
	end := time.Now().Add(d)
	start := time.Now()
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			for i := 0; time.Now().Before(end); i++ {
				t0 := time.Now()
				if err := fn(c, i); err != nil {
					ferr.Store(err)
					return
				}
				mine = append(mine, time.Since(t0))
				n.Add(1)
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	if err, _ := ferr.Load().(error); err != nil {
		t.Fatal(err)
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	require.NotEmpty(t, lat)
	return float64(n.Load()) / time.Since(start).Seconds(), lat[len(lat)*99/100]
}

// TestMeasureReplicas reports (it asserts no speed) earns and back-office
// reads through one and three replicas, and the reads on the primary and
// on the standby, for docs/scaling.md. Every replica shares the machine
// with PostgreSQL, so on a small machine three replicas measure the cost
// of coordination rather than a gain.
func TestMeasureReplicas(t *testing.T) {
	enabled(t)
	if os.Getenv("PERKS_SCALE_MEASURE") != "1" {
		t.Skip("measurement: run `make bench-scale` on a quiet machine")
	}
	in := install(t, true)
	primaryEnv := perksEnv(in.dir, in.primary.url)
	standbyEnv := append(perksEnv(in.dir, in.primary.url), "PERKS_READ_DATABASE_URL="+in.standby.url)
	var three []*replica
	for i := range 3 {
		three = append(three, startReplica(t, in.bin, in.dir, standbyEnv, "replica-"+strconv.Itoa(i+1)))
	}
	onPrimary := startReplica(t, in.bin, in.dir, primaryEnv, "primary-reads")
	ctx := context.Background()
	startLoad(t, in, acme(balancer(t, three).URL)).finish(t, 3*time.Second) // users, and some history

	const d = 5 * time.Second
	earn := func(c *client, tag string) func(w, i int) error {
		return func(w, i int) error {
			ref := fmt.Sprintf("%s-%d-%d", tag, w, i)
			body := []byte(fmt.Sprintf(`{"externalUserId":"scale-%d","action":"purchase","points":3,"reference":%q}`, (w*31+i)%loadUsers, ref))
			code, _, b, err := c.send(c.request(ctx, http.MethodPost, "/integrations/actions", body, "m-"+ref), body)
			if err != nil || code != http.StatusCreated {
				return fmt.Errorf("earn: %d %s %v", code, b, err)
			}
			return nil
		}
	}
	reads := func(c *client) func(w, i int) error {
		return func(w, i int) error {
			path := "/integrations/users?limit=50"
			if i%2 == 1 {
				path = "/integrations/users/scale-" + strconv.Itoa((w*31+i)%loadUsers) + "/ranking"
			}
			code, _, b, err := c.send(c.request(ctx, http.MethodGet, path, nil, ""), nil)
			if err != nil || code != http.StatusOK {
				return fmt.Errorf("GET %s: %d %s %v", path, code, b, err)
			}
			return nil
		}
	}
	one := acme(balancer(t, three[:1]).URL)
	all := acme(balancer(t, three).URL)
	primaryOnly := acme(onPrimary.url)
	for _, m := range []struct {
		name string
		fn   func(w, i int) error
	}{
		{"earn, 1 replica", earn(one, "m1")},
		{"earn, 3 replicas", earn(all, "m3")},
		{"reads on the primary, 1 replica", reads(primaryOnly)},
		{"reads on the standby, 1 replica", reads(one)},
		{"reads on the standby, 3 replicas", reads(all)},
	} {
		rate, p99 := measure(t, 16, d, m.fn)
		t.Logf("%-34s %7.0f req/s  p99 %s", m.name, rate, p99.Round(100*time.Microsecond))
	}
}
