package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/rampart-soar/rampart/server"
)

func newPlaybookReplayCmd() *cobra.Command {
	var base, since, alerts string
	var version, limit int
	var asJSON, all bool
	cmd := &cobra.Command{
		Use:   "replay NAME --version N [--since 24h | --alerts ID,...]",
		Short: "Shadow replay: run a version in dry-run on recorded alerts and show which decisions would change",
		Long: `replay runs version N of a playbook in dry-run against recorded alerts, with
their recorded detection and enrichment, and compares its decisions (trigger, steps
taken, final status) and actions with those of the version that ran on each alert.
Reads are answered from the recording of the run where it made the same call;
approvals with the recorded decision. Nothing reaches a vendor and nothing is
written. It prints each alert whose outcome changes (--all: every alert) and a
summary: same, changed, new failure, and the alerts still being handled (in
flight: shown with --all, not compared). The exit status is 0 however the decisions
compare.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if version < 1 {
				return fmt.Errorf("--version N is required")
			}
			body := map[string]any{}
			switch {
			case alerts != "" && cmd.Flags().Changed("since"):
				return fmt.Errorf("give --since or --alerts, not both")
			case alerts != "":
				body["alerts"] = strings.Split(alerts, ",")
			default:
				body["since"] = since
			}
			if limit > 0 {
				body["limit"] = limit
			}
			payload, _ := json.Marshal(body)
			path := fmt.Sprintf("/api/v1/playbooks/%s/versions/%d:replay", url.PathEscape(args[0]), version)
			req, err := http.NewRequestWithContext(cmd.Context(), http.MethodPost, strings.TrimRight(base, "/")+path, bytes.NewReader(payload))
			if err != nil {
				return err
			}
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Accept", "application/x-ndjson")
			if err := authorize(req); err != nil {
				return err
			}
			resp, err := replayClient.Do(req)
			if err != nil {
				return fmt.Errorf("is rampart running at %s? %w", req.URL.Host, err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				out, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
				return apiFailure(resp.StatusCode, out)
			}
			return printReplay(cmd, resp.Body, asJSON, all)
		},
	}
	cmd.Flags().IntVar(&version, "version", 0, "the version to replay")
	cmd.Flags().StringVar(&since, "since", "24h", "replay the alerts received this long ago until now (e.g. 24h, 7d)")
	cmd.Flags().StringVar(&alerts, "alerts", "", "replay these alerts (comma-separated ids) instead")
	cmd.Flags().IntVar(&limit, "limit", 0, fmt.Sprintf("at most this many alerts, newest first (at most %d)", server.MaxReplayAlerts))
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON line per alert, then the summary")
	cmd.Flags().BoolVar(&all, "all", false, "print every alert, not only the changed ones")
	urlFlag(cmd, &base)
	return cmd
}

// replayClient has no overall timeout: a long replay streams for as long as it
// takes, and the server ends it.
var replayClient = &http.Client{}

// printReplay reads the streamed replay: a line per alert, then the summary. On a
// terminal it shows progress on stderr.
func printReplay(cmd *cobra.Command, body io.Reader, asJSON, all bool) error {
	out, errOut := cmd.OutOrStdout(), cmd.ErrOrStderr()
	tty := isTerminal(errOut)
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	for sc.Scan() {
		var line struct {
			Alert   *server.ReplayAlert   `json:"alert"`
			Summary *server.ReplaySummary `json:"summary"`
			Error   *struct {
				Message string `json:"message"`
			} `json:"error"`
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			return fmt.Errorf("unreadable replay answer: %w", err)
		}
		switch {
		case line.Error != nil:
			if tty {
				fmt.Fprint(errOut, "\r\033[K")
			}
			return fmt.Errorf("%s", line.Error.Message)
		case line.Alert != nil:
			a := line.Alert
			if tty {
				fmt.Fprintf(errOut, "\r\033[Kreplaying %d/%d", a.Index, a.Total)
			}
			if asJSON {
				fmt.Fprintln(out, sc.Text())
				continue
			}
			if (a.Verdict == server.ReplaySame || a.Verdict == server.ReplayInFlight) && !all {
				continue
			}
			if tty {
				fmt.Fprint(errOut, "\r\033[K")
			}
			printReplayAlert(out, a)
		case line.Summary != nil:
			if tty {
				fmt.Fprint(errOut, "\r\033[K")
			}
			s := line.Summary
			if asJSON {
				fmt.Fprintln(out, sc.Text())
				return nil
			}
			fmt.Fprintf(out, "%d alert(s): %d same, %d changed, %d new failure(s)", s.Alerts, s.Same, s.Changed, s.NewFailures)
			if s.InFlight > 0 {
				fmt.Fprintf(out, ", %d in flight", s.InFlight)
			}
			if s.NotFound > 0 {
				fmt.Fprintf(out, ", %d not found", s.NotFound)
			}
			fmt.Fprintln(out)
			return nil
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	return fmt.Errorf("the replay ended without a summary")
}

func printReplayAlert(w io.Writer, a *server.ReplayAlert) {
	fmt.Fprintf(w, "%-11s %s  %s\n", strings.ToUpper(a.Verdict), a.AlertID, a.Title)
	if a.Verdict == server.ReplayNotFound {
		return
	}
	side := func(label string, s server.ReplaySide) {
		switch {
		case !s.Triggered:
			fmt.Fprintf(w, "    %s: not triggered\n", label)
		default:
			fmt.Fprintf(w, "    %s\n", strings.TrimSpace(fmt.Sprintf("%s v%d: %s %s", label, s.Version, s.Status, s.Message)))
			for _, act := range s.Actions {
				fmt.Fprintf(w, "        %s\n", act)
			}
		}
	}
	side("ran     ", a.Ran)
	side("replayed", a.Replayed)
	for _, d := range a.Differences {
		fmt.Fprintf(w, "    %s\n", d)
	}
	for _, n := range a.Notes {
		fmt.Fprintf(w, "    note: %s\n", n)
	}
}

// isTerminal reports whether v is a file that is a terminal (not /dev/null, a
// pipe or a buffer).
func isTerminal(v any) bool {
	f, ok := v.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

func newPlaybookRunCmd() *cobra.Command {
	var base, alertID, by, reason string
	var version int
	var dryRun bool
	cmd := &cobra.Command{
		Use:   "run NAME --alert ID [--version N] [--dry-run] [--by NAME] [--reason TEXT]",
		Short: "Run a playbook on a recorded alert now, live or as a dry run",
		Long: `run starts a playbook version (the latest by default) on a recorded alert, with
the alert's recorded detection and enrichment, as a durable run on the worker. With
--dry-run its contain and notify actions are recorded ("would call X with Y")
instead of made; reads still run. The run's steps appear under the alert
(rampart alert show ID), with who started it and why.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if alertID == "" {
				return fmt.Errorf("--alert ID is required")
			}
			body, err := json.Marshal(server.RunRequest{Playbook: args[0], Version: version, DryRun: dryRun,
				By: actorName(cmd, by), Reason: reason})
			if err != nil {
				return err
			}
			var out server.RunStarted
			if err := call(cmd, http.MethodPost, base, "/api/v1/alerts/"+url.PathEscape(alertID)+":run", "application/json", body, &out); err != nil {
				return err
			}
			mode := "live"
			if out.DryRun {
				mode = "dry run"
			}
			fmt.Fprintf(cmd.OutOrStdout(), "started %s v%d on %s (%s): workflow %s\n", out.Playbook, out.Version, alertID, mode, out.WorkflowID)
			return nil
		},
	}
	cmd.Flags().StringVar(&alertID, "alert", "", "the alert to run it on")
	cmd.Flags().IntVar(&version, "version", 0, "the version (default: the latest)")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "record contain and notify actions instead of making them")
	actorFlags(cmd, &by, &reason, "runs the playbook")
	urlFlag(cmd, &base)
	return cmd
}
