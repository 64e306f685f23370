package slo

import (
	"time"
)

// Standard burn-rate windows reported for every SLO, besides the policy's
// own windows and the SLO window ("window").
var StandardWindows = []time.Duration{5 * time.Minute, 30 * time.Minute, time.Hour, 2 * time.Hour, 6 * time.Hour, 24 * time.Hour, 72 * time.Hour}

// Condition states.
const (
	CondOK     = "ok"
	CondFiring = "firing"
	// CondNoData: one of the two windows has no events (or the SLO is
	// still back-filling that far); the previous state is kept.
	CondNoData = "no_data"
)

// Status is the evaluation of one SLO for one group.
type Status struct {
	SLO        string    `json:"slo"`
	Group      string    `json:"group"`
	GroupBy    string    `json:"group_by"`
	GroupLabel string    `json:"group_label"`
	Objective  float64   `json:"objective"`
	Window     string    `json:"window"`
	Budgeting  string    `json:"budgeting"`
	Time       time.Time `json:"time"`
	// HasData is false when the window holds no event: SLI, budget and
	// forecast are then absent (null), never NaN nor a fake 100%.
	HasData bool   `json:"has_data"`
	Good    uint64 `json:"good"`
	Total   uint64 `json:"total"`
	// SLI is good/total over the window.
	SLI *float64 `json:"sli"`
	// ErrorBudgetRemaining is 1 − (1 − SLI)/(1 − objective): 1 untouched,
	// 0 exhausted, negative overspent.
	ErrorBudgetRemaining *float64 `json:"error_budget_remaining"`
	// BurnRates by window name ("5m", "1h", …, "window").
	BurnRates map[string]*float64 `json:"burn_rates"`
	// Counts behind each burn rate.
	WindowCounts map[string]Counts `json:"window_counts"`
	Forecast     Forecast          `json:"forecast"`
	Conditions   []Condition       `json:"alerts"`
	// Stale: the last evaluation (or recording) of this SLO failed; the
	// figures are those of the last good one (at Time).
	Stale bool   `json:"stale"`
	Error string `json:"error,omitempty"`
	// Backfilling: history older than CoveredFrom is still being recorded.
	Backfilling bool      `json:"backfilling"`
	CoveredFrom time.Time `json:"covered_from"`

	// Spec is the SLO's specification.
	Spec *Spec `json:"-"`
}

// Counts of good and total events in a window.
type Counts struct {
	Good  uint64 `json:"good"`
	Total uint64 `json:"total"`
}

// Forecast of the error budget at the current (1h) burn rate.
type Forecast struct {
	// BurnRate1h is the burn rate the forecast assumes.
	BurnRate *float64 `json:"burn_rate"`
	// TimeToExhaustionSeconds: nil when no budget is burning or no data;
	// 0 when the budget is already exhausted.
	TimeToExhaustionSeconds *float64   `json:"time_to_exhaustion_seconds"`
	ExhaustedAt             *time.Time `json:"exhausted_at"`
}

// Condition is the state of one burn-rate alert rule.
type Condition struct {
	Name        string   `json:"name"`
	Severity    string   `json:"severity"`
	LongWindow  string   `json:"long_window"`
	ShortWindow string   `json:"short_window"`
	Factor      float64  `json:"factor"`
	LongBurn    *float64 `json:"long_burn"`
	ShortBurn   *float64 `json:"short_burn"`
	// State is ok, firing or no_data (evaluated this cycle).
	State string `json:"state"`
	// Firing is the alert state: kept as it was when State is no_data or
	// the status is stale.
	Firing bool      `json:"firing"`
	Since  time.Time `json:"since"`
}

func ratio(good, total uint64) *float64 {
	if total == 0 {
		return nil
	}
	v := float64(good) / float64(total)
	return &v
}

// Burn returns (1 − good/total)/(1 − objective), or nil without events.
func Burn(c Counts, objective float64) *float64 {
	r := ratio(c.Good, c.Total)
	if r == nil {
		return nil
	}
	v := (1 - *r) / (1 - objective)
	return &v
}
