// Package telemetry is what a Rampart process shows Prometheus: a writer of the
// text exposition format, and Metrics, which keeps in memory for a scrape what
// the Temporal SDK reports (the worker's task latencies, failures and pollers,
// the client's requests) and what Rampart reports the same way. It imports the Temporal SDK's client package for the
// metrics handler's interface and nothing of Rampart, so the server and the
// worker process can both use it.
package telemetry

import (
	"fmt"
	"strconv"
	"strings"
)

// ContentType is the text exposition format's media type.
const ContentType = "text/plain; version=0.0.4; charset=utf-8"

// Exposition is Prometheus's text format, written a metric family at a time.
type Exposition struct{ strings.Builder }

// Family starts a metric family; help may be empty.
func (e *Exposition) Family(name, kind, help string) {
	if help != "" {
		fmt.Fprintf(e, "# HELP %s %s\n", name, help)
	}
	fmt.Fprintf(e, "# TYPE %s %s\n", name, kind)
}

// Sample writes one value; labels alternate names and values.
func (e *Exposition) Sample(name string, value float64, labels ...string) {
	e.WriteString(name)
	for i := 0; i+1 < len(labels); i += 2 {
		if i == 0 {
			e.WriteByte('{')
		} else {
			e.WriteByte(',')
		}
		e.WriteString(labels[i])
		e.WriteString(`="`)
		e.writeEscaped(labels[i+1])
		e.WriteByte('"')
	}
	if len(labels) > 1 {
		e.WriteByte('}')
	}
	var buf [32]byte
	e.WriteByte(' ')
	e.Write(strconv.AppendFloat(buf[:0], value, 'f', -1, 64))
	e.WriteByte('\n')
}

// writeEscaped writes a label value with its backslashes, quotes and newlines
// escaped.
func (e *Exposition) writeEscaped(v string) {
	for _, r := range v {
		switch r {
		case '\\':
			e.WriteString(`\\`)
		case '"':
			e.WriteString(`\"`)
		case '\n':
			e.WriteString(`\n`)
		default:
			e.WriteRune(r)
		}
	}
}

// Gauge writes a family of one unlabelled value.
func (e *Exposition) Gauge(name, help string, value float64) {
	e.Family(name, "gauge", help)
	e.Sample(name, value)
}

// sanitize makes name a valid metric or label name: what Prometheus does not
// allow becomes '_'. Colons are for recording rules, so never kept.
func sanitize(name string) string {
	valid := func(i int, c byte) bool {
		return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9'
	}
	if name == "" {
		return "_"
	}
	for i := 0; i < len(name); i++ {
		if !valid(i, name[i]) {
			b := []byte(name)
			for j := i; j < len(b); j++ {
				if !valid(j, b[j]) {
					b[j] = '_'
				}
			}
			return string(b)
		}
	}
	return name
}
