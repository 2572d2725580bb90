package main

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/rampart-soar/rampart/schemas"
	"github.com/rampart-soar/rampart/server"
	"github.com/rampart-soar/rampart/store"
	"github.com/rampart-soar/rampart/workflows"
)

func newAlertShowCmd() *cobra.Command {
	return showCmd("alert", "/api/v1/alerts/",
		"Show an alert: what it is, why it ended as it did, its enrichment, decision, steps, playbook runs, actions and approvals",
		`show prints an alert for a reader: the finding and its entities, the summary of
why it ended as it did, the enrichment, the decision, the steps of its run and of
each playbook run, the actions taken and the approvals asked for. --json prints the API's answer as it is.`,
		printAlert)
}

// showCmd is a `show ID` command: it GETs prefix+ID and prints the answer for a
// reader with print, or as the API gave it with --json.
func showCmd[T any](what, prefix, short, long string, print func(io.Writer, *T)) *cobra.Command {
	return readCmd("show ID", what, prefix, "", short, long, print)
}

// readCmd is a command of one argument, an ID: it GETs prefix+ID+suffix and prints
// the answer for a reader with print, or as the API gave it with --json.
func readCmd[T any](use, what, prefix, suffix, short, long string, print func(io.Writer, *T)) *cobra.Command {
	var base string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Long:  long,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var raw json.RawMessage
			if err := call(cmd, http.MethodGet, base, prefix+url.PathEscape(args[0])+suffix, "", nil, &raw); err != nil {
				return err
			}
			if asJSON {
				return printIndented(cmd.OutOrStdout(), raw)
			}
			var v T
			if err := json.Unmarshal(raw, &v); err != nil {
				return fmt.Errorf("unreadable %s: %w", what, err)
			}
			print(cmd.OutOrStdout(), &v)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the API's JSON answer")
	urlFlag(cmd, &base)
	return cmd
}

func printIndented(w io.Writer, raw json.RawMessage) error {
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, raw, "", "  "); err != nil {
		return err
	}
	_, err := fmt.Fprintln(w, pretty.String())
	return err
}

// printAlert writes the alert as a reader wants it, most telling first. Parts the
// alert does not have (no enrichment before the run got there) are left out.
func printAlert(w io.Writer, d *server.AlertDetail) {
	var alert schemas.Alert
	_ = json.Unmarshal(d.Alert, &alert)
	tw, field := fieldWriter(w)

	if d.Status == server.AlertReceived { // Temporal holds it; no worker has recorded what it is yet
		fmt.Fprintln(tw, "An alert not recorded yet")
	} else {
		fmt.Fprintln(tw, d.Title)
	}
	field("id", "%s", d.ID)
	field("status", "%s", d.Status)
	if d.Summary != "" {
		field("why", "%s", d.Summary)
	}
	for _, r := range d.StalledRuns {
		field("stalled", "%s", describeStall(r))
	}
	if d.Status == server.AlertReceived {
		field("severity", "%s · source %s", d.Severity, d.Source)
		field("received", "%s", d.ReceivedAt.Local().Format(time.DateTime))
	} else {
		field("severity", "%s (confidence %d) · source %s · rule %s", d.Severity, d.Confidence, d.Source, orDash(d.Rule))
		field("received", "%s · event time %s", d.ReceivedAt.Local().Format(time.DateTime), d.EventTime.Local().Format(time.DateTime))
	}
	if d.Timings != nil {
		field("timing", "%s", d.Timings.Summary)
	}
	if d.DuplicateCount > 0 {
		field("duplicates", "%d, the last at %s", d.DuplicateCount, d.LastSeenAt.Local().Format(time.DateTime))
	}
	for _, e := range []struct{ name, value string }{
		{"device", joinNonEmpty(" · ", alert.Device.Hostname, alert.Device.IP, alert.Device.ID)},
		{"user", joinNonEmpty(" · ", alert.User.Name, alert.User.Email)},
		{"file", joinNonEmpty(" · ", alert.File.Name, cmp.Or(alert.File.SHA256, alert.File.SHA1, alert.File.MD5))},
		{"process", joinNonEmpty(" · ", alert.Process.Name, alert.Process.CmdLine)},
		{"network", joinNonEmpty(" → ", alert.SrcIP, alert.DstIP)},
		{"domain", joinNonEmpty(" · ", alert.Domain, alert.URL)},
	} {
		if e.value != "" {
			field(e.name, "%s", e.value)
		}
	}
	var attack []string
	for _, a := range alert.Attacks {
		attack = append(attack, joinNonEmpty(" ", a.Technique.UID, a.Technique.Name))
	}
	if len(attack) > 0 {
		field("ATT&CK", "%s", strings.Join(attack, "; "))
	}
	if d.EnrichmentSummary != "" {
		field("enrichment", "%s", d.EnrichmentSummary)
	}
	if d.DecisionSummary != "" {
		field("decision", "%s", d.DecisionSummary)
	}
	field("workflow", "%s (run %s)", d.Temporal.WorkflowID, d.Temporal.RunID)
	_ = tw.Flush()

	fmt.Fprintln(w, "\nSteps")
	printSteps(w, d.Steps)
	for _, p := range d.Playbooks {
		var result workflows.PlaybookResult
		_ = json.Unmarshal(p.Result, &result)
		status, message := p.Run.Status, p.Run.Error
		if result.Status != "" {
			status, message = result.Status, result.Message
		}
		mode := ""
		if p.Note != "" {
			mode = " (" + p.Note + ")"
		}
		fmt.Fprintf(w, "\nPlaybook %s v%d%s: %s%s\n", p.Playbook, p.Version, mode, status, prefixed(" — ", message))
		if result.Status == "" && p.Run.Status == store.StatusRunning {
			// The steps below are those that ended; the run itself says where it is.
			fmt.Fprintf(w, "  where it is now: rampart alert state %s\n", d.ID)
		}
		printSteps(w, p.Steps)
	}
	if len(d.Actions) > 0 {
		fmt.Fprintln(w, "\nActions")
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		for _, a := range d.Actions {
			fmt.Fprintf(tw, "  %s.%s\t%s\t%s%s\t%s%d vendor call(s)%s\n", a.Integration, a.Operation, a.Target,
				a.Status, prefixed(" · vendor ", joinNonEmpty(" ", a.VendorStatus, a.VendorID)), retried(a.Attempts), a.VendorCalls,
				prefixed(" · ", joinNonEmpty(" — ", a.Error, a.Note)))
		}
		_ = tw.Flush()
	}
	if len(d.Approvals) > 0 {
		fmt.Fprintln(w, "\nApprovals")
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		for _, a := range d.Approvals {
			outcome := "pending: rampart approvals approve|deny " + a.ID
			if a.Status != store.ApprovalPending {
				outcome = a.Status + prefixed(" by ", a.DecidedBy) + prefixed(": ", a.Reason)
			}
			fmt.Fprintf(tw, "  %s\t%s · %s\t%s\t%s\n", a.Operation, a.Playbook, a.Step, compactJSON(a.Inputs), outcome)
		}
		_ = tw.Flush()
	}
}

func printSteps(w io.Writer, steps []server.StepView) {
	if len(steps) == 0 {
		fmt.Fprintln(w, "  (none yet)")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, s := range steps {
		took := ""
		if s.DurationMS != nil {
			took = fmt.Sprintf("%d ms", *s.DurationMS)
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s%s\n", s.Name, s.Status, took, prefixed("\t", joinNonEmpty("\t", s.Error, s.Note)))
	}
	_ = tw.Flush()
}

// retried says how many attempts an action took, when it took more than one: the
// failures that were retried leave no other trace in the alert.
func retried(attempts int) string {
	if attempts <= 1 {
		return ""
	}
	return fmt.Sprintf("%d attempts, ", attempts)
}

// fieldWriter aligns a view's "name  value" lines, indented under its heading;
// flush the writer when done.
func fieldWriter(w io.Writer) (*tabwriter.Writer, func(name, format string, args ...any)) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	return tw, func(name, format string, args ...any) {
		fmt.Fprintf(tw, "  %s\t"+format+"\n", append([]any{name}, args...)...)
	}
}

func joinNonEmpty(sep string, parts ...string) string {
	var out []string
	for _, p := range parts {
		if p != "" {
			out = append(out, p)
		}
	}
	return strings.Join(out, sep)
}

// prefixed is prefix+s, or nothing for an empty s.
func prefixed(prefix, s string) string {
	if s == "" {
		return ""
	}
	return prefix + s
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// describeStall says in a line what is wrong with a stalled run, and since when.
func describeStall(r server.StalledRun) string {
	line := r.WorkflowType + ": " + r.Problem
	if r.Attempts > 0 {
		line += fmt.Sprintf(" (%d attempts", r.Attempts)
		if r.Since != nil {
			line += " since " + r.Since.Local().Format(time.DateTime)
		}
		line += ")"
	}
	if r.Error != "" {
		line += ": " + r.Error
	}
	return line
}
