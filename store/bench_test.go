package store_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/rampart-soar/rampart/schemas"
	"github.com/rampart-soar/rampart/store"
	"github.com/rampart-soar/rampart/store/storetest"
)

// BenchmarkCountPriorAlerts counts prior alerts for one alert of a campaign: the
// same user, file hash and process on every host, so each of those entities names
// every earlier alert, and the device is new. n is how many alerts the campaign
// already has in the window.
func BenchmarkCountPriorAlerts(b *testing.B) {
	for _, n := range []int{10, 2000} {
		b.Run(fmt.Sprintf("prior=%d", n), func(b *testing.B) {
			ctx := context.Background()
			st := storetest.SQLite(b)
			shared := []schemas.Entity{
				{Kind: schemas.EntityUser, Value: "j.doe"},
				{Kind: schemas.EntityHash, Value: "4f2a0c5b1e9d"},
				{Kind: schemas.EntityDomain, Value: "evil.example"},
			}
			for i := range n {
				id := fmt.Sprintf("a%05d", i)
				ents := append([]schemas.Entity{{Kind: schemas.EntityDevice, Value: "dev-" + id}}, shared...)
				if err := st.RecordAlert(ctx, alertRow(id, t0.Add(time.Duration(i)*time.Second), 4, store.AlertProcessing), ents, nil); err != nil {
					b.Fatal(err)
				}
			}
			ents := append([]schemas.Entity{{Kind: schemas.EntityDevice, Value: "dev-new"}}, shared...)
			until := t0.Add(time.Duration(n) * time.Second)
			b.ResetTimer()
			for range b.N {
				if _, err := st.CountPriorAlerts(ctx, ents, until.Add(-24*time.Hour), until, "new"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkStepInTransaction writes one step in a transaction, as every
// activity does: the statement's preparation is what a statement cache saves.
func BenchmarkStepInTransaction(b *testing.B) {
	ctx := context.Background()
	st := storetest.SQLite(b)
	started := t0
	b.ResetTimer()
	for i := range b.N {
		err := st.InTx(ctx, func(tx *store.Store) error {
			return tx.SaveStep(ctx, &store.Step{RunID: fmt.Sprintf("run-%d", i), Name: "detect", Seq: 1,
				Status: store.StatusSucceeded, StartedAt: started, InputJSON: `{"a":1}`, OutputJSON: `{"b":2}`})
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkConcurrentWrites has three writers each commit a step and pause
// 0.2 ms, as the activities of alerts in flight do, and reports the writes'
// latency: on SQLite a writer that finds the lock taken sleeps in the busy
// handler unless it waits its turn in the process (stmtPool).
func BenchmarkConcurrentWrites(b *testing.B) {
	ctx := context.Background()
	st := storetest.SQLite(b)
	const writers = 3
	lats := make([][]time.Duration, writers)
	b.ResetTimer()
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := w; i < b.N; i += writers {
				at := time.Now()
				err := st.InTx(ctx, func(tx *store.Store) error {
					return tx.SaveStep(ctx, &store.Step{RunID: fmt.Sprintf("run-%d", i), Name: "detect", Seq: 1,
						Status: store.StatusSucceeded, StartedAt: at, InputJSON: `{"a":1}`})
				})
				if err != nil {
					b.Error(err)
					return
				}
				lats[w] = append(lats[w], time.Since(at))
				time.Sleep(200 * time.Microsecond)
			}
		})
	}
	wg.Wait()
	all := slices.Concat(lats...)
	slices.Sort(all)
	if len(all) > 0 {
		b.ReportMetric(float64(all[len(all)/2].Microseconds()), "p50_µs")
		b.ReportMetric(float64(all[len(all)*99/100].Microseconds()), "p99_µs")
	}
}
