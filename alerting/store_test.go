package alerting

import (
	"context"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/meridian-obs/meridian/internal/testutil/chtest"
	"github.com/meridian-obs/meridian/slo"
)

func TestMain(m *testing.M) { chtest.Main(m) }

type connOf struct{ c driver.Conn }

func (c connOf) Conn() driver.Conn { return c.c }

// Alert changes land in the alerts table, with their labels.
func TestAlertsTable(t *testing.T) {
	conn, _ := chtest.DB(t)
	a, err := New(DefaultConfig(), Deps{Registry: prometheus.NewRegistry(), Store: connOf{conn}})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	a.ObserveSLO(time.Now(), []slo.Status{status(true, false, false)})
	a.ObserveSLO(time.Now(), []slo.Status{status(false, false, false)})
	if err := a.Stop(context.Background()); err != nil { // drains the queue
		t.Fatal(err)
	}
	rows, err := conn.Query(context.Background(), "SELECT status, slo, severity, label_values[indexOf(label_names, 'region')] FROM alerts ORDER BY time, status")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []string
	for rows.Next() {
		var st, s, sev, region string
		if err := rows.Scan(&st, &s, &sev, &region); err != nil {
			t.Fatal(err)
		}
		got = append(got, st+"/"+s+"/"+sev+"/"+region)
	}
	want := map[string]bool{"firing/edge/page/eu-west": true, "resolved/edge/page/eu-west": true}
	if len(got) != 2 || !want[got[0]] || !want[got[1]] || got[0] == got[1] {
		t.Errorf("alerts rows %v", got)
	}
}
