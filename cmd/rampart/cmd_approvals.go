package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/user"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/rampart-soar/rampart/server"
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
					deadline, a.Operation, ellipsis(approvalAlertLine(a), 60), a.Playbook, a.Step, compactJSON(a.Approvers))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&status, "status", "pending", "pending, approved, denied, expired or all")
	urlFlag(cmd, &base)
	return cmd
}

// approvalAlertLine says in a line what an approval is about: the host or user,
// the alert's severity and title.
func approvalAlertLine(a server.ApprovalView) string {
	if a.Alert == nil {
		return a.AlertID
	}
	var parts []string
	for _, p := range []string{a.Alert.Hostname, a.Alert.User, a.Alert.Severity, a.Alert.Title} {
		if p != "" {
			parts = append(parts, p)
		}
	}
	return strings.Join(parts, " · ")
}

func newApprovalsShowCmd() *cobra.Command {
	var base string
	cmd := &cobra.Command{
		Use:   "show ID",
		Short: "Show an approval: the action, its exact inputs, who may decide, and the outcome",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var a json.RawMessage
			if err := call(cmd, http.MethodGet, base, "/api/v1/approvals/"+url.PathEscape(args[0]), "", nil, &a); err != nil {
				return err
			}
			var pretty bytes.Buffer
			if err := json.Indent(&pretty, a, "", "  "); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), pretty.String())
			return nil
		},
	}
	urlFlag(cmd, &base)
	return cmd
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
			if os.Getenv(apiTokenEnv) != "" && !cmd.Flags().Changed("by") {
				by = "" // the server names the token's holder
			}
			body, err := json.Marshal(server.Decision{Decision: decision, By: by, Reason: reason})
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
	cmd.Flags().StringVar(&by, "by", currentUser(), "who decides (env RAMPART_USER, else the login name); with RAMPART_API_TOKEN the server takes the token's holder")
	cmd.Flags().StringVar(&reason, "reason", "", "why, for the audit trail")
	urlFlag(cmd, &base)
	return cmd
}

func newAlertKeepCmd() *cobra.Command {
	var base string
	cmd := &cobra.Command{
		Use:   "keep ID",
		Short: "Keep an alert's containment: cancel the timed reverts its playbooks scheduled",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var out struct {
				Kept []string `json:"kept"`
			}
			if err := call(cmd, http.MethodPost, base, "/api/v1/alerts/"+url.PathEscape(args[0])+":keep", "", nil, &out); err != nil {
				return err
			}
			if len(out.Kept) == 0 {
				fmt.Fprintln(cmd.OutOrStdout(), "no pending revert")
				return nil
			}
			fmt.Fprintf(cmd.OutOrStdout(), "kept: %s\n", strings.Join(out.Kept, ", "))
			return nil
		},
	}
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

func compactJSON(raw json.RawMessage) string {
	var b bytes.Buffer
	if json.Compact(&b, raw) != nil {
		return string(raw)
	}
	return b.String()
}
