// Package linediff finds the shortest line edit from one list of lines to
// another, as diff does: `rampart playbook diff` prints one between two versions,
// and `rampart playbook test` one between the steps and actions a case expects
// and those the run took. It does no I/O and imports only the standard library.
package linediff

// Edit is one line of an edit script.
type Edit struct {
	Op   byte // ' ' in both, '-' only in a, '+' only in b
	Text string
}

// Script is a shortest edit script from a to b: the lines of both, in order,
// along their longest common subsequence; where they differ, a's lines first.
func Script(a, b []string) []Edit {
	// common[i][j] is how long the longest common subsequence of a[i:] and b[j:] is.
	common := make([][]int, len(a)+1)
	for i := range common {
		common[i] = make([]int, len(b)+1)
	}
	for i := len(a) - 1; i >= 0; i-- {
		for j := len(b) - 1; j >= 0; j-- {
			if a[i] == b[j] {
				common[i][j] = common[i+1][j+1] + 1
			} else {
				common[i][j] = max(common[i+1][j], common[i][j+1])
			}
		}
	}
	edits := make([]Edit, 0, max(len(a), len(b)))
	for i, j := 0, 0; i < len(a) || j < len(b); {
		switch {
		case i < len(a) && j < len(b) && a[i] == b[j]:
			edits = append(edits, Edit{' ', a[i]})
			i, j = i+1, j+1
		case i < len(a) && (j == len(b) || common[i+1][j] >= common[i][j+1]):
			edits = append(edits, Edit{'-', a[i]})
			i++
		default:
			edits = append(edits, Edit{'+', b[j]})
			j++
		}
	}
	return edits
}
