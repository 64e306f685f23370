package web

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"sort"
	"strconv"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// The flow endpoints read the flow rollups (flows_1m_* and flows_1h_*, see
// pipeline/store/schema_flows.go) when the query's grouping and filters fit
// one, else the raw flows table; the firewall endpoints read
// firewall_events. Every table has its time column first in its sort key, so
// a range reads only its own granules.

// flowSource picks the table for a grouping kind ("region", "port",
// "exporter", or "" for raw-only keys such as addresses) and returns it with
// its time column and its flow-count expression.
func flowSource(q query, kind string) (table, timeCol, countExpr string) {
	raw := func() (string, string, string) { return "flows", "time_received", "count()" }
	if kind == "" {
		return raw()
	}
	if _, ok := q.Filters["site"]; ok {
		return raw()
	}
	has := func(ks ...string) bool {
		for _, k := range ks {
			if _, ok := q.Filters[k]; ok {
				return true
			}
		}
		return false
	}
	switch kind {
	case "port":
		if has("exporter_region") {
			return raw()
		}
	case "exporter":
		if has("src_region", "dst_region", "region", "proto") {
			return raw()
		}
	}
	grain := "1m"
	if q.Step >= time.Hour && q.Step%time.Hour == 0 {
		grain = "1h"
	}
	return "flows_" + grain + "_" + kind, "time", "sum(flows)"
}

var flowFilters = []string{"region", "site", "src_region", "dst_region", "exporter_region", "proto"}

func flowWhere(q query) (string, []any, error) {
	w, args := where(q, [][2]string{{"src_region", "src_region"}, {"dst_region", "dst_region"},
		{"exporter_region", "exporter_region"}})
	if v, ok := q.Filters["region"]; ok {
		w += " AND (src_region = ? OR dst_region = ?)"
		args = append(args, v, v)
	}
	if v, ok := q.Filters["site"]; ok {
		w += " AND (src_site = ? OR dst_site = ?)"
		args = append(args, v, v)
	}
	if v, ok := q.Filters["proto"]; ok {
		p, err := protoNumber(v)
		if err != nil {
			return "", nil, badParam{"proto: " + err.Error()}
		}
		w += " AND proto = ?"
		args = append(args, p)
	}
	return w, args, nil
}

var protoNames = map[uint8]string{1: "icmp", 6: "tcp", 17: "udp", 47: "gre", 50: "esp", 58: "icmpv6", 132: "sctp"}

func protoName(p uint8) string {
	if n, ok := protoNames[p]; ok {
		return n
	}
	return strconv.Itoa(int(p))
}

func protoNumber(s string) (uint8, error) {
	for n, name := range protoNames {
		if name == s {
			return n, nil
		}
	}
	n, err := strconv.ParseUint(s, 10, 8)
	if err != nil {
		return 0, fmt.Errorf("expected a protocol name (tcp, udp, icmp, …) or number, got %q", s)
	}
	return uint8(n), nil
}

// addrString renders a FixedString(16) address (IPv4 mapped) as text.
func addrString(b string) string {
	if len(b) != 16 {
		return ""
	}
	var a [16]byte
	copy(a[:], b)
	ad := netip.AddrFrom16(a).Unmap()
	if ad.IsUnspecified() {
		return "unknown"
	}
	return ad.String()
}

// TopItem is one row of a top-N.
type TopItem struct {
	Key     string `json:"key"`
	Bytes   uint64 `json:"bytes,omitempty"`
	Packets uint64 `json:"packets,omitempty"`
	Count   uint64 `json:"count"`
}

var flowTopKeys = map[string][2]string{
	"src_addr":    {"src_addr", ""},
	"dst_addr":    {"dst_addr", ""},
	"proto":       {"toString(proto)", "region"},
	"src_port":    {"toString(src_port)", ""},
	"dst_port":    {"concat(toString(proto), '/', toString(dst_port))", "port"},
	"region_pair": {"concat(src_region, ' → ', dst_region)", "region"},
	"exporter":    {"concat(exporter_region, ' ', exporter_site)", "exporter"},
	"src_as":      {"toString(src_as)", ""},
	"dst_as":      {"toString(dst_as)", ""},
}

func (s *Server) flowTop(ctx context.Context, conn driver.Conn, r *http.Request) (any, error) {
	q, err := s.parse(r, flowFilters, "by", "limit")
	if err != nil {
		return nil, err
	}
	by := q.Values.Get("by")
	if by == "" {
		by = "src_addr"
	}
	kk, ok := flowTopKeys[by]
	if !ok {
		return nil, badParam{fmt.Sprintf("by: expected one of src_addr, dst_addr, proto, src_port, dst_port, region_pair, exporter, src_as, dst_as; got %q", by)}
	}
	key := kk[0]
	table, tcol, cnt := flowSource(q, kk[1])
	limit, err := limitParam(q.Values, 10, 100)
	if err != nil {
		return nil, badParam{err.Error()}
	}
	w, args, err := flowWhere(q)
	if err != nil {
		return nil, err
	}
	sql := `SELECT ` + key + ` AS k, sum(bytes) AS b, sum(packets), ` + cnt + ` FROM ` + table + `
WHERE ` + tcol + ` >= toDateTime(?) AND ` + tcol + ` < toDateTime(?)` + w + `
GROUP BY k ORDER BY b DESC LIMIT ?`
	all := append([]any{q.From.Unix(), q.To.Unix()}, args...)
	rows, err := conn.Query(ctx, sql, append(all, limit)...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	items := []TopItem{}
	for rows.Next() {
		var it TopItem
		if err := rows.Scan(&it.Key, &it.Bytes, &it.Packets, &it.Count); err != nil {
			return nil, err
		}
		switch by {
		case "src_addr", "dst_addr":
			it.Key = addrString(it.Key)
		case "proto":
			n, _ := strconv.Atoi(it.Key)
			it.Key = protoName(uint8(n))
		case "dst_port":
			var p, port int
			fmt.Sscanf(it.Key, "%d/%d", &p, &port)
			it.Key = fmt.Sprintf("%s/%d", protoName(uint8(p)), port)
		}
		items = append(items, it)
	}
	return map[string]any{"from": q.From, "to": q.To, "by": by, "source": table, "items": items}, rows.Err()
}

// FlowCell is one cell of the inter-region traffic matrix.
type FlowCell struct {
	SrcRegion string `json:"src_region"`
	DstRegion string `json:"dst_region"`
	Bytes     uint64 `json:"bytes"`
	Packets   uint64 `json:"packets"`
}

func (s *Server) flowMatrix(ctx context.Context, conn driver.Conn, r *http.Request) (any, error) {
	q, err := s.parse(r, flowFilters)
	if err != nil {
		return nil, err
	}
	w, args, err := flowWhere(q)
	if err != nil {
		return nil, err
	}
	q.Step = time.Hour
	if q.To.Sub(q.From) < 48*time.Hour {
		q.Step = time.Minute
	}
	table, tcol, _ := flowSource(q, "region")
	sql := `SELECT src_region, dst_region, sum(bytes), sum(packets) FROM ` + table + `
WHERE ` + tcol + ` >= toDateTime(?) AND ` + tcol + ` < toDateTime(?)` + w + `
GROUP BY src_region, dst_region ORDER BY src_region, dst_region LIMIT 10000`
	rows, err := conn.Query(ctx, sql, append([]any{q.From.Unix(), q.To.Unix()}, args...)...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	cells := []FlowCell{}
	for rows.Next() {
		var c FlowCell
		if err := rows.Scan(&c.SrcRegion, &c.DstRegion, &c.Bytes, &c.Packets); err != nil {
			return nil, err
		}
		cells = append(cells, c)
	}
	return map[string]any{"from": q.From, "to": q.To, "source": table, "cells": cells}, rows.Err()
}

// RateSeries is a series of per-second rates, in columns.
type RateSeries struct {
	From        time.Time `json:"from"`
	To          time.Time `json:"to"`
	StepSeconds int64     `json:"step_seconds"`
	Source      string    `json:"source"`
	T           []int64   `json:"t"`
	BitsPerSec  []float64 `json:"bits_per_second"`
	PktsPerSec  []float64 `json:"packets_per_second"`
}

func (s *Server) flowSeries(ctx context.Context, conn driver.Conn, r *http.Request) (any, error) {
	q, err := s.parse(r, flowFilters)
	if err != nil {
		return nil, err
	}
	w, args, err := flowWhere(q)
	if err != nil {
		return nil, err
	}
	step := int64(q.Step / time.Second)
	table, tcol, _ := flowSource(q, "region")
	sql := `SELECT toUInt32(intDiv(toUInt32(` + tcol + `), ?) * ?) AS b, sum(bytes), sum(packets) FROM ` + table + `
WHERE ` + tcol + ` >= toDateTime(?) AND ` + tcol + ` < toDateTime(?)` + w + `
GROUP BY b ORDER BY b`
	rows, err := conn.Query(ctx, sql, append([]any{step, step, q.From.Unix(), q.To.Unix()}, args...)...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := RateSeries{From: q.From, To: q.To, StepSeconds: step, Source: table, T: []int64{}, BitsPerSec: []float64{}, PktsPerSec: []float64{}}
	for rows.Next() {
		var (
			b      uint32
			by, pk uint64
		)
		if err := rows.Scan(&b, &by, &pk); err != nil {
			return nil, err
		}
		out.T = append(out.T, int64(b))
		out.BitsPerSec = append(out.BitsPerSec, float64(by)*8/float64(step))
		out.PktsPerSec = append(out.PktsPerSec, float64(pk)/float64(step))
	}
	return out, rows.Err()
}

var firewallFilters = []string{"device", "region", "site", "rule"}

// denied is the set of actions the firewall views count.
const denied = " AND action IN ('deny', 'drop', 'reject')"

var firewallTopKeys = map[string]string{
	"src_addr": "src_addr",
	"dst_addr": "dst_addr",
	"rule":     "rule",
	"device":   "device",
	"dst_port": "concat(toString(proto), '/', toString(dst_port))",
}

func (s *Server) firewallTop(ctx context.Context, conn driver.Conn, r *http.Request) (any, error) {
	q, err := s.parse(r, firewallFilters, "by", "limit")
	if err != nil {
		return nil, err
	}
	by := q.Values.Get("by")
	if by == "" {
		by = "src_addr"
	}
	key, ok := firewallTopKeys[by]
	if !ok {
		return nil, badParam{fmt.Sprintf("by: expected one of src_addr, dst_addr, rule, device, dst_port; got %q", by)}
	}
	limit, err := limitParam(q.Values, 10, 100)
	if err != nil {
		return nil, badParam{err.Error()}
	}
	w, args := where(q, [][2]string{{"device", "device"}, {"region", "region"}, {"site", "site"}, {"rule", "rule"}})
	sql := `SELECT ` + key + ` AS k, count() AS c FROM firewall_events
WHERE time >= toDateTime(?) AND time < toDateTime(?)` + denied + w + `
GROUP BY k ORDER BY c DESC LIMIT ?`
	all := append([]any{q.From.Unix(), q.To.Unix()}, args...)
	rows, err := conn.Query(ctx, sql, append(all, limit)...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	items := []TopItem{}
	for rows.Next() {
		var it TopItem
		if err := rows.Scan(&it.Key, &it.Count); err != nil {
			return nil, err
		}
		switch by {
		case "src_addr", "dst_addr":
			it.Key = addrString(it.Key)
		case "dst_port":
			var p, port int
			fmt.Sscanf(it.Key, "%d/%d", &p, &port)
			it.Key = fmt.Sprintf("%s/%d", protoName(uint8(p)), port)
		case "rule":
			if it.Key == "" {
				it.Key = "(no rule name)"
			}
		}
		items = append(items, it)
	}
	return map[string]any{"from": q.From, "to": q.To, "by": by, "items": items}, rows.Err()
}

// DeviceRate is the deny rate of one device, aligned on FirewallSeries.T.
type DeviceRate struct {
	Device string    `json:"device"`
	Total  uint64    `json:"total"`
	Rate   []float64 `json:"per_second"`
}

func (s *Server) firewallSeries(ctx context.Context, conn driver.Conn, r *http.Request) (any, error) {
	q, err := s.parse(r, firewallFilters, "limit")
	if err != nil {
		return nil, err
	}
	limit, err := limitParam(q.Values, 8, 50)
	if err != nil {
		return nil, badParam{err.Error()}
	}
	w, args := where(q, [][2]string{{"device", "device"}, {"region", "region"}, {"site", "site"}, {"rule", "rule"}})
	step := int64(q.Step / time.Second)
	sql := `SELECT device, toUInt32(intDiv(toUInt32(time), ?) * ?) AS b, count() FROM firewall_events
WHERE time >= toDateTime(?) AND time < toDateTime(?)` + denied + w + `
GROUP BY device, b ORDER BY b`
	rows, err := conn.Query(ctx, sql, append([]any{step, step, q.From.Unix(), q.To.Unix()}, args...)...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	// Buckets of the whole range, so every device series aligns.
	first := q.From.Unix() / step * step
	n := int((q.To.Unix()-first)/step) + 1
	ts := make([]int64, n)
	for i := range ts {
		ts[i] = first + int64(i)*step
	}
	byDev := map[string]*DeviceRate{}
	for rows.Next() {
		var (
			dev string
			b   uint32
			c   uint64
		)
		if err := rows.Scan(&dev, &b, &c); err != nil {
			return nil, err
		}
		d := byDev[dev]
		if d == nil {
			d = &DeviceRate{Device: dev, Rate: make([]float64, n)}
			byDev[dev] = d
		}
		i := int((int64(b) - first) / step)
		if i >= 0 && i < n {
			d.Rate[i] += float64(c) / float64(step)
			d.Total += c
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	devs := make([]DeviceRate, 0, len(byDev))
	for _, d := range byDev {
		devs = append(devs, *d)
	}
	sort.Slice(devs, func(i, j int) bool {
		if devs[i].Total != devs[j].Total {
			return devs[i].Total > devs[j].Total
		}
		return devs[i].Device < devs[j].Device
	})
	if len(devs) > limit {
		devs = devs[:limit]
	}
	return map[string]any{"from": q.From, "to": q.To, "step_seconds": step, "t": ts, "devices": devs}, nil
}

func sorted(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
