package main

import "testing"

// The expected hunks are what GNU diff -u prints for the same files.
func TestUnifiedDiffPrintsHunksAsDiffU(t *testing.T) {
	lines := func(s ...string) string {
		out := ""
		for _, l := range s {
			out += l + "\n"
		}
		return out
	}
	cases := []struct {
		name, a, b, want string
	}{
		{"same", lines("a", "b"), lines("a", "b"), ""},
		{"a change near the top and a line added at the end",
			lines("a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l", "m", "n"),
			lines("a", "B", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l", "m", "n", "o"),
			"@@ -1,5 +1,5 @@\n a\n-b\n+B\n c\n d\n e\n@@ -12,3 +12,4 @@\n l\n m\n n\n+o\n"},
		{"changes six lines apart share a hunk",
			lines("a", "b", "c", "d", "e", "f", "g", "h", "i", "j"),
			lines("a", "b", "X", "d", "e", "f", "g", "h", "Y", "j"),
			"@@ -1,10 +1,10 @@\n a\n b\n-c\n+X\n d\n e\n f\n g\n h\n-i\n+Y\n j\n"},
		{"changes seven lines apart do not",
			lines("1", "2", "3", "4", "5", "6", "7", "8", "9"),
			lines("X", "2", "3", "4", "5", "6", "7", "8", "Y"),
			"@@ -1,4 +1,4 @@\n-1\n+X\n 2\n 3\n 4\n@@ -6,4 +6,4 @@\n 6\n 7\n 8\n-9\n+Y\n"},
		{"from nothing", "", lines("x"), "@@ -0,0 +1 @@\n+x\n"},
		{"to nothing", lines("x"), "", "@@ -1 +0,0 @@\n-x\n"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := unifiedDiff("v1", "v2", c.a, c.b)
			want := c.want
			if want != "" {
				want = "--- v1\n+++ v2\n" + want
			}
			if got != want {
				t.Fatalf("diff:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}
