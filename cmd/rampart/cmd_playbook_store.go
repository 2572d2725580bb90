package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/rampart-soar/rampart/cmd/rampart/internal/linediff"
	"github.com/rampart-soar/rampart/playbook/lint"
	"github.com/rampart-soar/rampart/server"
)

// The commands below talk to a running Rampart through its API.

func newPlaybookApplyCmd() *cobra.Command {
	var base string
	cmd := &cobra.Command{
		Use:   "apply FILE|DIR...",
		Short: "Lint playbooks, then store each changed one as its next version",
		Long: `apply lints every playbook given (a directory means the playbooks in it) and,
when all are clean, sends each to the server, which stores it as version n+1 when
its definition changed. Playbooks another one calls are applied first.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			results, err := lint.Files(args...)
			if err != nil {
				return err
			}
			problems := 0
			for _, r := range results {
				for _, p := range r.Problems {
					fmt.Fprintln(cmd.ErrOrStderr(), p)
					problems++
				}
			}
			if problems > 0 {
				fmt.Fprintf(cmd.ErrOrStderr(), "%d problem(s): nothing applied\n", problems)
				return exitError(1)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "PLAYBOOK\tVERSION\tCHANGE\tFILE")
			for _, r := range calleesFirst(results) {
				data, err := os.ReadFile(r.File)
				if err != nil {
					return err
				}
				var applied server.Applied
				ctype := "application/yaml"
				if strings.EqualFold(filepath.Ext(r.File), ".json") {
					ctype = "application/json"
				}
				if err := call(cmd, http.MethodPost, base, "/api/v1/playbooks?file="+url.QueryEscape(filepath.Base(r.File)), ctype, data, &applied); err != nil {
					return fmt.Errorf("%s: %w", r.File, err)
				}
				change := "unchanged"
				if applied.Created {
					change = "new version"
				}
				fmt.Fprintf(tw, "%s\t%d\t%s\t%s\n", applied.Name, applied.Version, change, r.File)
			}
			return tw.Flush()
		},
	}
	urlFlag(cmd, &base)
	return cmd
}

// calleesFirst orders playbooks so that each comes after those it calls.
func calleesFirst(results []*lint.Result) []*lint.Result {
	byName := map[string]*lint.Result{}
	for _, r := range results {
		byName[r.Playbook.Name] = r
	}
	var out []*lint.Result
	done := map[string]bool{}
	var visit func(r *lint.Result)
	visit = func(r *lint.Result) {
		if done[r.Playbook.Name] {
			return
		}
		done[r.Playbook.Name] = true
		for _, callee := range r.Playbook.Callees() {
			if c, ok := byName[callee]; ok {
				visit(c)
			}
		}
		out = append(out, r)
	}
	for _, r := range results {
		visit(r)
	}
	return out
}

func newPlaybookListCmd() *cobra.Command {
	var base string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List stored playbooks",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var out struct {
				Playbooks []server.PlaybookView `json:"playbooks"`
			}
			if err := call(cmd, http.MethodGet, base, "/api/v1/playbooks", "", nil, &out); err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "PLAYBOOK\tVERSION\tENABLED\tPRIORITY\tDESCRIPTION")
			for _, p := range out.Playbooks {
				desc, _, _ := strings.Cut(strings.TrimSpace(p.Description), "\n")
				fmt.Fprintf(tw, "%s\t%d\t%v\t%d\t%s\n", p.Name, p.LatestVersion, p.Enabled, p.Priority, desc)
			}
			return tw.Flush()
		},
	}
	urlFlag(cmd, &base)
	return cmd
}

func newPlaybookShowCmd() *cobra.Command {
	var base string
	var version int
	cmd := &cobra.Command{
		Use:   "show NAME",
		Short: "Show a playbook version's source (the latest unless --version)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			v, err := fetchVersion(cmd, base, args[0], version)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "# %s v%d (%s)\n%s", args[0], v.Version, v.Hash[:12], v.Source)
			return nil
		},
	}
	cmd.Flags().IntVar(&version, "version", 0, "version to show (default: the latest)")
	urlFlag(cmd, &base)
	return cmd
}

func newPlaybookExportCmd() *cobra.Command {
	var base string
	var version int
	cmd := &cobra.Command{
		Use:   "export NAME",
		Short: "Print a playbook version's source exactly as applied, to save or re-apply",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			v, err := fetchVersion(cmd, base, args[0], version)
			if err != nil {
				return err
			}
			_, err = io.WriteString(cmd.OutOrStdout(), v.Source)
			return err
		},
	}
	cmd.Flags().IntVar(&version, "version", 0, "version to export (default: the latest)")
	urlFlag(cmd, &base)
	return cmd
}

func newPlaybookDiffCmd() *cobra.Command {
	var base string
	cmd := &cobra.Command{
		Use:   "diff NAME A B",
		Short: "Show what changed from version A to version B of a playbook",
		Args:  cobra.ExactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			a, err := strconv.Atoi(args[1])
			if err != nil {
				return fmt.Errorf("version %q is not a number", args[1])
			}
			b, err := strconv.Atoi(args[2])
			if err != nil {
				return fmt.Errorf("version %q is not a number", args[2])
			}
			va, err := fetchVersion(cmd, base, args[0], a)
			if err != nil {
				return err
			}
			vb, err := fetchVersion(cmd, base, args[0], b)
			if err != nil {
				return err
			}
			fmt.Fprint(cmd.OutOrStdout(), unifiedDiff(fmt.Sprintf("%s v%d", args[0], a), fmt.Sprintf("%s v%d", args[0], b), va.Source, vb.Source))
			return nil
		},
	}
	urlFlag(cmd, &base)
	return cmd
}

func newPlaybookEnableCmd(enable bool) *cobra.Command {
	var base string
	use, short := "enable NAME", "Let a playbook run on matching alerts"
	if !enable {
		use, short = "disable NAME", "Stop a playbook from starting new runs (runs in flight continue)"
	}
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			action := "disable"
			if enable {
				action = "enable"
			}
			var out map[string]any
			if err := call(cmd, http.MethodPost, base, "/api/v1/playbooks/"+url.PathEscape(args[0])+":"+action, "", nil, &out); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s %sd\n", args[0], action)
			return nil
		},
	}
	urlFlag(cmd, &base)
	return cmd
}

func fetchVersion(cmd *cobra.Command, base, name string, version int) (server.VersionView, error) {
	if version == 0 {
		var pb server.PlaybookView
		if err := call(cmd, http.MethodGet, base, "/api/v1/playbooks/"+url.PathEscape(name), "", nil, &pb); err != nil {
			return server.VersionView{}, err
		}
		version = pb.LatestVersion
	}
	var v server.VersionView
	err := call(cmd, http.MethodGet, base, fmt.Sprintf("/api/v1/playbooks/%s/versions/%d", url.PathEscape(name), version), "", nil, &v)
	return v, err
}

// call makes one API request and decodes a 2xx answer; any other answer is an
// error carrying the API's message.
func call(cmd *cobra.Command, method, base, path, contentType string, body []byte, into any) error {
	req, err := http.NewRequestWithContext(cmd.Context(), method, strings.TrimRight(base, "/")+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	if err := authorize(req); err != nil {
		return err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	out, status, err := do(req)
	if err != nil {
		return err
	}
	if status < 200 || status > 299 {
		return apiFailure(status, out)
	}
	if into == nil {
		return nil
	}
	return json.Unmarshal(out, into)
}

// apiFailure is the error for a non-2xx answer, in the API's own words.
func apiFailure(status int, body []byte) error {
	var e struct {
		Error struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &e) == nil && e.Error.Message != "" {
		return fmt.Errorf("HTTP %d: %s", status, e.Error.Message)
	}
	return fmt.Errorf("HTTP %d: %s", status, strings.TrimSpace(string(body)))
}

// diffContext is how many unchanged lines a diff shows around each change.
const diffContext = 3

// unifiedDiff is a unified diff of a and b, as diff -u prints it: hunks headed
// "@@ -line,count +line,count @@", removed lines before added ones, three lines of
// context. Empty when they are the same.
func unifiedDiff(nameA, nameB, a, b string) string {
	edits := linediff.Script(splitLines(a), splitLines(b))
	// Before edit k, beforeA[k] lines of a and beforeB[k] lines of b have passed.
	beforeA, beforeB := make([]int, len(edits)+1), make([]int, len(edits)+1)
	var changes []int
	for k, e := range edits {
		beforeA[k+1], beforeB[k+1] = beforeA[k], beforeB[k]
		if e.Op != '+' {
			beforeA[k+1]++
		}
		if e.Op != '-' {
			beforeB[k+1]++
		}
		if e.Op != ' ' {
			changes = append(changes, k)
		}
	}
	if len(changes) == 0 {
		return ""
	}
	var out strings.Builder
	out.WriteString("--- " + nameA + "\n+++ " + nameB + "\n")
	for first := 0; first < len(changes); {
		last := first // changes closer than two contexts apart share a hunk
		for last+1 < len(changes) && changes[last+1]-changes[last] <= 2*diffContext+1 {
			last++
		}
		from, to := max(0, changes[first]-diffContext), min(len(edits), changes[last]+diffContext+1)
		fmt.Fprintf(&out, "@@ -%s +%s @@\n",
			hunkRange(beforeA[from], beforeA[to]-beforeA[from]), hunkRange(beforeB[from], beforeB[to]-beforeB[from]))
		for _, e := range edits[from:to] {
			out.WriteByte(e.Op)
			out.WriteString(e.Text)
			out.WriteByte('\n')
		}
		first = last + 1
	}
	return out.String()
}

// hunkRange is one side of a hunk header as diff -u writes it: first line and
// count, the count left out when it is 1, and for no lines the line after which
// they would be.
func hunkRange(before, count int) string {
	switch count {
	case 0:
		return fmt.Sprintf("%d,0", before)
	case 1:
		return strconv.Itoa(before + 1)
	}
	return fmt.Sprintf("%d,%d", before+1, count)
}

func splitLines(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(strings.TrimSuffix(s, "\n"), "\n")
}
