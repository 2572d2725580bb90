package store_test

import (
	"context"
	"fmt"
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
