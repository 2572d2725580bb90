package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/user"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/rampart-soar/rampart/server"
	"github.com/rampart-soar/rampart/workflows"
)

func newApprovalsCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "approvals", Short: "List and answer the approvals playbook steps wait for"}
	cmd.AddCommand(newApprovalsListCmd(), newApprovalsShowCmd(), newApprovalDecideCmd("approve"), newApprovalDecideCmd("deny"))
	return cmd
}

func newApprovalsListCmd() *cobra.Command {
	var base, status string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List approvals, newest first (pending by default)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			q := url.Values{}
			if status != "all" {
				q.Set("status", status)
			}
			var out struct {
				Approvals []server.ApprovalView `json:"approvals"`
			}
			if err := call(cmd, http.MethodGet, base, "/api/v1/approvals?"+q.Encode(), "", nil, &out); err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tSTATUS\tREQUESTED\tDEADLINE\tOPERATION\tALERT\tPLAYBOOK\tSTEP\tAPPROVERS")
			for _, a := range out.Approvals {
				deadline := ""
				if a.Deadline != nil {
					deadline = a.Deadline.Local().Format(time.DateTime)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", a.ID, a.Status, a.RequestedAt.Local().Format(time.DateTime),
					deadline, a.Operation, workflows.Clip(approvalAlertLine(a), 60), a.Playbook, a.Step, approverList(a.Approvers))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&status, "status", "pending", "pending, approved, denied, expired, cancelled or all")
	urlFlag(cmd, &base)
	return cmd
}

// approvalAlertLine says in a line what an approval is about: the host or user,
// the alert's severity and title.
func approvalAlertLine(a server.ApprovalView) string {
	if a.Alert == nil {
		return a.AlertID
	}
	return joinNonEmpty(" · ", a.Alert.Hostname, a.Alert.User, a.Alert.Severity, a.Alert.Title)
}

func newApprovalsShowCmd() *cobra.Command {
	return showCmd("approval", "/api/v1/approvals/",
		"Show an approval: the alert, the action and its exact inputs, who may decide, and the outcome",
		`show prints an approval for the analyst deciding it: the alert it is about, the
action and its exact inputs, who may decide and by when, and the decision once made.
--json prints the API's answer as it is.`,
		printApproval)
}

// printApproval writes what an analyst needs to decide: what is at stake, what
// exactly would run, and who may say so by when.
func printApproval(w io.Writer, a *server.ApprovalView) {
	tw, field := fieldWriter(w)
	fmt.Fprintf(tw, "%s on %s\n", a.Operation, orDash(approvalAlertLine(*a)))
	field("id", "%s", a.ID)
	field("status", "%s", a.Status)
	if a.Alert != nil {
		field("alert", "%s (%s)", a.AlertID, a.Alert.Status)
	}
	field("step", "%s (playbook %s)", a.Step, a.Playbook)
	if inputs := map[string]any{}; json.Unmarshal(a.Inputs, &inputs) == nil && len(inputs) > 0 {
		namedValues(field, "inputs.", inputs)
	} else {
		field("inputs", "%s", compactJSON(a.Inputs))
	}
	field("args hash", "%s", a.ArgsHash)
	if approvers := approverList(a.Approvers); approvers != "" {
		field("approvers", "%s", approvers)
	}
	field("requested", "%s", a.RequestedAt.Local().Format(time.DateTime))
	if a.Deadline != nil {
		field("deadline", "%s", a.Deadline.Local().Format(time.DateTime))
	}
	if a.DecidedAt != nil {
		field("decided", "%s by %s%s", a.DecidedAt.Local().Format(time.DateTime), orDash(a.DecidedBy), prefixed(": ", a.Reason))
	}
	field("workflow", "%s (run %s)", a.WorkflowID, a.RunID)
	_ = tw.Flush()
}

func newApprovalDecideCmd(decision string) *cobra.Command {
	var base, by, reason string
	short := "Approve a pending action: the playbook step runs it"
	if decision == "deny" {
		short = "Deny a pending action: the playbook step fails (or follows its on_error)"
	}
	cmd := &cobra.Command{
		Use:   decision + " ID",
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			body, err := json.Marshal(server.Decision{Decision: decision, By: actorName(cmd, by), Reason: reason})
			if err != nil {
				return err
			}
			var out server.ApprovalView
			path := "/api/v1/approvals/" + url.PathEscape(args[0]) + ":decide"
			if err := call(cmd, http.MethodPost, base, path, "application/json", body, &out); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s %s by %s: %s %s (playbook %s)\n", out.ID, out.Status, out.DecidedBy, out.Operation, out.Step, out.Playbook)
			return nil
		},
	}
	actorFlags(cmd, &by, &reason, "decides")
	urlFlag(cmd, &base)
	return cmd
}

// actorFlags adds --by and --reason: who acts, and why, for the audit trail.
func actorFlags(cmd *cobra.Command, by, reason *string, does string) {
	cmd.Flags().StringVar(by, "by", currentUser(), "who "+does+" (env RAMPART_USER, else the login name); with RAMPART_API_TOKEN the server takes the token's holder")
	cmd.Flags().StringVar(reason, "reason", "", "why, for the audit trail")
}

// actorName is the --by to send: none with an API token unless given, since the
// server then names the token's holder.
func actorName(cmd *cobra.Command, by string) string {
	if token, _ := apiToken(); token != "" && !cmd.Flags().Changed("by") { // a token that cannot be read fails the request itself
		return ""
	}
	return by
}

func newAlertKeepCmd() *cobra.Command {
	var base, by, reason string
	cmd := &cobra.Command{
		Use:   "keep ID",
		Short: "Keep an alert's containment: cancel the timed reverts its playbooks scheduled",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			body, err := json.Marshal(workflows.Actor{By: actorName(cmd, by), Reason: reason})
			if err != nil {
				return err
			}
			var out struct {
				Kept []string `json:"kept"`
				By   string   `json:"by"`
			}
			path := "/api/v1/alerts/" + url.PathEscape(args[0]) + ":keep"
			if err := call(cmd, http.MethodPost, base, path, "application/json", body, &out); err != nil {
				return err
			}
			if len(out.Kept) == 0 {
				fmt.Fprintln(cmd.OutOrStdout(), "no pending revert")
				return nil
			}
			fmt.Fprintf(cmd.OutOrStdout(), "kept by %s: %s\n", out.By, strings.Join(out.Kept, ", "))
			return nil
		},
	}
	actorFlags(cmd, &by, &reason, "keeps the actions")
	urlFlag(cmd, &base)
	return cmd
}

// currentUser names who runs the CLI, for decisions.
func currentUser() string {
	if u := os.Getenv("RAMPART_USER"); u != "" {
		return u
	}
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return ""
}

// approverList reads the approvers a step names as a list for a person: "role:tier2,
// ana"; anything but a list of names is shown as its JSON.
func approverList(raw json.RawMessage) string {
	var names []string
	if json.Unmarshal(raw, &names) != nil {
		return compactJSON(raw)
	}
	return strings.Join(names, ", ")
}

func compactJSON(raw json.RawMessage) string {
	var b bytes.Buffer
	if json.Compact(&b, raw) != nil {
		return string(raw)
	}
	return b.String()
}
