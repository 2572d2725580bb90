// Package telemetrytest reads a metrics answer as Prometheus does, for the
// tests of every process that serves one. It imports Prometheus's parser and
// nothing of Rampart.
package telemetrytest

import (
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
)

// Parse reads text in the exposition format, failing t on anything Prometheus
// would refuse.
func Parse(t testing.TB, text string) map[string]*dto.MetricFamily {
	t.Helper()
	var parser expfmt.TextParser
	families, err := parser.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		t.Fatalf("Prometheus refuses the metrics: %v\n%s", err, text)
	}
	return families
}

// Series are the family's series whose labels include want.
func Series(f *dto.MetricFamily, want map[string]string) []*dto.Metric {
	var out []*dto.Metric
	for _, m := range f.GetMetric() {
		have := make(map[string]string, len(m.GetLabel()))
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		match := true
		for k, v := range want {
			match = match && have[k] == v
		}
		if match {
			out = append(out, m)
		}
	}
	return out
}

// Sum adds up what the family's series with want have seen: a counter's or a
// gauge's value, a histogram's observations.
func Sum(f *dto.MetricFamily, want map[string]string) float64 {
	var n float64
	for _, m := range Series(f, want) {
		n += m.GetCounter().GetValue() + m.GetGauge().GetValue() + float64(m.GetHistogram().GetSampleCount())
	}
	return n
}
