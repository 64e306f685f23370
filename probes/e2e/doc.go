// Package e2e holds the end-to-end test of the probe path: meridian-agent
// → probe server → pipeline → a real ClickHouse, through a server outage.
package e2e
