package ingest

import "fmt"

// Limits bound what a delivery may be.
type Limits struct {
	// MaxBody is the largest accepted body in bytes (default 1 MiB).
	MaxBody int64
	// MaxDepth is the deepest accepted nesting of objects and arrays (default 32).
	MaxDepth int
}

// DefaultLimits are the limits used when none are configured.
var DefaultLimits = Limits{MaxBody: 1 << 20, MaxDepth: 32}

// checkDepth scans a JSON text and refuses nesting deeper than max. It runs before
// any decoder builds the document, so a deeply nested body costs one linear pass and
// no allocations. It does not validate the JSON; the decoder does that next.
func checkDepth(data []byte, max int) error {
	depth, inString, escaped := 0, false, false
	for i, c := range data {
		if inString {
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
		case '{', '[':
			depth++
			if depth > max {
				return fmt.Errorf("JSON nesting exceeds %d levels at byte %d", max, i)
			}
		case '}', ']':
			depth--
		}
	}
	return nil
}
