package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/rampart-soar/rampart/cmd/rampart/internal/app"
	"github.com/rampart-soar/rampart/server"
	"github.com/rampart-soar/rampart/server/ingest"
	"github.com/rampart-soar/rampart/store"
	"github.com/rampart-soar/rampart/workflows"
)

func newAlertCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "alert", Short: "Send and inspect alerts"}
	cmd.AddCommand(newAlertSendCmd(), newAlertReplayCmd(), newAlertListCmd(), newAlertShowCmd(), newAlertStateCmd(), newAlertKeepCmd(), newAlertStalledCmd(), newAlertSourcesCmd())
	return cmd
}

func urlFlag(cmd *cobra.Command, into *string) {
	def := app.Env("RAMPART_URL", "http://"+app.Env("RAMPART_LISTEN", app.DefaultListen))
	cmd.Flags().StringVar(into, "url", def, "Rampart base URL (env RAMPART_URL)")
}

var httpClient = &http.Client{Timeout: 30 * time.Second}

func newAlertSendCmd() *cobra.Command {
	var source string
	var signer webhookSigner
	cmd := &cobra.Command{
		Use:   "send FILE",
		Short: "Sign and post an alert payload to a webhook source",
		Long: `send posts FILE (one JSON payload in the source's format; - reads stdin) to
/api/v1/webhooks/SOURCE. Without --secret it signs with the secret the server uses:
RAMPART_WEBHOOK_SECRET_<SOURCE> (or the file its _FILE variant names) if set, else the
source's entry in the sources file.
To send many alerts, see replay.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			body, err := readPayload(args[0])
			if err != nil {
				return err
			}
			req, err := signer.request(cmd.Context(), source, body)
			if err != nil {
				return err
			}
			out, status, err := do(req)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), strings.TrimSpace(string(out)))
			if status != http.StatusAccepted {
				return exitError(2)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&source, "source", "", "webhook source name, e.g. crowdstrike or ocsf (required)")
	_ = cmd.MarkFlagRequired("source")
	signer.flags(cmd)
	return cmd
}

// webhookSigner makes webhook deliveries the way a source's tool would: signed
// (or carrying the bearer token) with the secret the server checks.
type webhookSigner struct {
	base        string
	secret      string // --secret: used for every source when set
	sourcesFile string

	once    sync.Once
	sources map[string]*ingest.Source
	err     error
}

func (w *webhookSigner) flags(cmd *cobra.Command) {
	cmd.Flags().StringVar(&w.secret, "secret", "", "HMAC secret or bearer token (default: the server's, from the environment or the sources file)")
	cmd.Flags().StringVar(&w.sourcesFile, "sources", app.Env("RAMPART_SOURCES_FILE", filepath.Join(app.ExamplesDir(), "sources.yaml")), "sources file to take the secret from")
	urlFlag(cmd, &w.base)
}

// request builds a delivery of body to source, signed as of now.
func (w *webhookSigner) request(ctx context.Context, source string, body []byte) (*http.Request, error) {
	secret, auth := w.secret, ingest.AuthHMAC
	if secret == "" {
		w.once.Do(func() { w.sources, w.err = ingest.LoadSources(w.sourcesFile) })
		if w.err != nil {
			return nil, fmt.Errorf("no --secret given and %w", w.err)
		}
		src, ok := w.sources[source]
		if !ok {
			return nil, fmt.Errorf("source %q is not in %s", source, w.sourcesFile)
		}
		secret, auth = src.Secret(), src.Auth
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost,
		strings.TrimRight(w.base, "/")+"/api/v1/webhooks/"+url.PathEscape(source), bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	if auth == ingest.AuthBearer {
		req.Header.Set("Authorization", "Bearer "+secret)
	} else {
		req.Header.Set(ingest.SignatureHeader, ingest.Sign([]byte(secret), time.Now(), body))
	}
	return req, nil
}

func readPayload(path string) ([]byte, error) {
	if path == "-" {
		return io.ReadAll(io.LimitReader(os.Stdin, 8<<20))
	}
	return os.ReadFile(path)
}

func newAlertListCmd() *cobra.Command {
	var base, status, severity, entity, rule string
	var limit int
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List alerts, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			q := url.Values{"limit": {strconv.Itoa(limit)}}
			if status != "" {
				q.Set("status", status)
			}
			if severity != "" {
				q.Set("min_severity", severity)
			}
			if entity != "" {
				q.Set("entity", entity)
			}
			if rule != "" {
				q.Set("rule", rule)
			}
			var page server.AlertList
			if err := call(cmd, http.MethodGet, base, "/api/v1/alerts?"+q.Encode(), "", nil, &page); err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tRECEIVED\tSEVERITY\tSTATUS\tTOOK\tDUPS\tSOURCE\tHOST\tTITLE\tWHY")
			for _, a := range page.Alerts {
				status := a.Status
				if a.Stalled {
					status += " (stalled)"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\n", a.ID, a.ReceivedAt.Local().Format(time.DateTime),
					a.Severity, status, timeToOutcome(a), a.DuplicateCount, a.Source, cmp.Or(a.Hostname, a.User, "-"), a.Title,
					workflows.Clip(a.Summary, 72))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&status, "status", "", "processing, contained, responded, no_action or failed")
	cmd.Flags().StringVar(&severity, "min-severity", "", "minimum severity: id (0-6) or name (low, high…)")
	cmd.Flags().StringVar(&entity, "entity", "", "only alerts about this hostname, device id, IP, user, hash, domain or URL")
	cmd.Flags().StringVar(&rule, "rule", "", "only alerts of this detection rule: its title or rule uid, exactly")
	cmd.Flags().IntVar(&limit, "limit", 50, "how many (1-200)")
	urlFlag(cmd, &base)
	return cmd
}

// timeToOutcome says how long an alert took from the webhook to its outcome,
// "-" while it has none.
func timeToOutcome(a server.AlertSummary) string {
	if a.Timings == nil || a.Timings.TimeToOutcomeMS == nil {
		return "-"
	}
	return server.SpokenDuration(time.Duration(*a.Timings.TimeToOutcomeMS) * time.Millisecond)
}

func newAlertStateCmd() *cobra.Command {
	return readCmd("state ID", "alert's state", "/api/v1/alerts/", "/state",
		"Ask an alert's run and its playbook runs where they are now: stage, position, variables, pending approvals",
		`state asks the alert's run and each of its playbook runs, through Temporal, where
they are now: the alert's stage and outcome so far, and each playbook run's position,
the steps it has started, the approvals it waits for and its variables. A worker
answers, so it works while the database is down. --json prints the API's answer as it is.`,
		printAlertState)
}

// printAlertState writes where an alert's run and its playbook runs are, as
// they answered.
func printAlertState(w io.Writer, v *server.AlertStateView) {
	s := v.State
	tw, field := fieldWriter(w)
	fmt.Fprintln(tw, "Alert "+v.AlertID)
	field("stage", "%s · %s", s.Stage, s.Outcome)
	if s.Waiting != "" {
		field("waiting", "%s", s.Waiting)
	}
	if s.Error != "" {
		field("error", "%s", s.Error)
	}
	if s.Decision != nil {
		field("decision", "%s", s.Decision.Reason)
	}
	if a := s.Action; a != nil {
		field("action", "%s.%s %s%s", a.Integration, a.Operation, a.Target, prefixed(" · vendor ", joinNonEmpty(" ", a.Status, a.VendorActionID)))
	}
	field("duplicates", "%d, the window closes at %s", s.Duplicates, s.DedupUntil.Local().Format(time.DateTime))
	field("workflow", "%s (run %s)", v.WorkflowID, v.RunID)
	_ = tw.Flush()
	for _, p := range v.Playbooks {
		if p.State == nil {
			fmt.Fprintf(w, "\nPlaybook %s: not answered: %s\n", p.Playbook, p.Error)
			continue
		}
		st := p.State
		fmt.Fprintf(w, "\nPlaybook %s v%d: %s\n", st.Playbook, st.Version, cmp.Or(st.Status, store.StatusRunning))
		tw, field := fieldWriter(w)
		field("at", "%s", orDash(strings.Join(st.Position, ", ")))
		field("steps", "%d started", st.Steps)
		if st.Waiting != "" {
			field("waiting", "%s", st.Waiting)
		}
		for _, a := range st.Approvals {
			until := ""
			if !a.Deadline.IsZero() {
				until = " until " + a.Deadline.Local().Format(time.DateTime)
			}
			field("approval", "%s %s (step %s): %s%s", a.ID, a.Operation, a.Step, a.Status, until)
		}
		namedValues(field, "vars.", st.Vars)
		field("workflow", "%s (run %s)", p.WorkflowID, p.RunID)
		_ = tw.Flush()
	}
}

// namedValues writes one field per key, in key order, named prefix+key, its value as
// JSON: a reader sees exactly what a step was given or holds.
func namedValues(field func(name, format string, args ...any), prefix string, values map[string]any) {
	for _, name := range slices.Sorted(maps.Keys(values)) {
		var value bytes.Buffer
		enc := json.NewEncoder(&value)
		enc.SetEscapeHTML(false)
		_ = enc.Encode(values[name])
		field(prefix+name, "%s", bytes.TrimSuffix(value.Bytes(), []byte("\n")))
	}
}

// apiTokenEnv holds the token the CLI presents to a server that requires one
// (the server's RAMPART_API_TOKEN_<NAME>); apiTokenEnv_FILE may name a file
// holding it instead.
const apiTokenEnv = "RAMPART_API_TOKEN"

// apiToken is the token the CLI presents, "" for none.
func apiToken() (string, error) {
	return app.EnvSecret(apiTokenEnv)
}

// authorize adds the API token, when there is one, to an API request. Webhook
// deliveries carry their source's signature or token instead.
func authorize(req *http.Request) error {
	token, err := apiToken()
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return err
}

func do(req *http.Request) ([]byte, int, error) {
	resp, err := httpClient.Do(req)
	if err != nil {
		return nil, 0, fmt.Errorf("is rampart running at %s? %w", req.URL.Host, err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	return out, resp.StatusCode, err
}

func newAlertStalledCmd() *cobra.Command {
	var base string
	cmd := &cobra.Command{
		Use:   "stalled",
		Short: "List the runs Temporal reports cannot progress, and why",
		Long: `stalled lists the open runs (alerts', playbook runs, timed reverts) whose
workflow task keeps failing or timing out, so none of their code runs: typically a
worker deployed with a bug, or with a change that no longer replays runs in flight.
Each carries on once a worker can run it again (roll the deploy back).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var stalled server.StalledList
			if err := call(cmd, http.MethodGet, base, "/api/v1/stalled?limit=200", "", nil, &stalled); err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if stalled.Total == 0 {
				fmt.Fprintln(out, "No run is stalled.")
				return nil
			}
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ALERT\tWORKFLOW\tSINCE\tATTEMPTS\tCAUSE\tERROR")
			for _, r := range stalled.Runs {
				since := "-"
				if r.Since != nil {
					since = r.Since.Local().Format(time.DateTime)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\n", orDash(r.AlertID), r.WorkflowID, since, r.Attempts,
					orDash(r.Cause), workflows.Clip(orDash(r.Error), 100))
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			if more := stalled.Total - len(stalled.Runs); more > 0 {
				fmt.Fprintf(out, "… and %d more.\n", more)
			}
			return nil
		},
	}
	urlFlag(cmd, &base)
	return cmd
}

func newAlertSourcesCmd() *cobra.Command {
	var base string
	cmd := &cobra.Command{
		Use:   "sources",
		Short: "How each webhook source's deliveries fared: accepted, folded, refused and why",
		Long: `sources lists the webhook sources the server accepts, and what became of their
deliveries since the server started: alerts started, duplicates folded into an open
alert, refusals by error code, and the last refusal with the server's answer. A tool
whose deliveries are refused (a rotated secret, a changed payload) shows here. Each
server counts its own deliveries.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var list server.SourceList
			if err := call(cmd, http.MethodGet, base, "/api/v1/sources", "", nil, &list); err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "SOURCE\tFORMAT\tAUTH\tACCEPTED\tDUPLICATES\tREFUSED\tLAST ACCEPTED\tLAST REFUSAL")
			for _, s := range list.Sources {
				lastAccepted, lastRefusal := "-", "-"
				if s.LastAcceptedAt != nil {
					lastAccepted = s.LastAcceptedAt.Local().Format(time.DateTime)
				}
				if r := s.LastRefusal; r != nil {
					lastRefusal = fmt.Sprintf("%s %d %s: %s", r.At.Local().Format(time.DateTime), r.Status, r.Code, workflows.Clip(r.Message, 80))
				}
				auth := s.Auth
				if s.PreviousSecret {
					auth += "+previous"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%s\t%s\t%s\n", s.Name, s.Format, auth, s.Accepted, s.Duplicates,
					refusals(s.Refused), lastAccepted, lastRefusal)
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			for _, s := range list.Sources {
				switch {
				case !s.PreviousSecret:
				case s.PreviousSecretUsed == 0:
					fmt.Fprintf(out, "%s: no delivery signed with its previous secret: once its tool has sent with the new one, the previous can go.\n", s.Name)
				default:
					fmt.Fprintf(out, "%s: %d deliveries signed with its previous secret, the last at %s: its tool has not moved to the new one.\n",
						s.Name, s.PreviousSecretUsed, s.PreviousSecretLastAt.Local().Format(time.DateTime))
				}
			}
			fmt.Fprintf(out, "Counted by this server since %s", list.Since.Local().Format(time.DateTime))
			if list.UnknownSource > 0 {
				fmt.Fprintf(out, "; %d deliveries to a source name not configured", list.UnknownSource)
			}
			fmt.Fprintln(out, ".")
			return nil
		},
	}
	urlFlag(cmd, &base)
	return cmd
}

// refusals is a source's refusals in a cell: how many, and of which codes.
func refusals(byCode map[string]int) string {
	if len(byCode) == 0 {
		return "0"
	}
	codes := slices.Sorted(maps.Keys(byCode))
	total, parts := 0, make([]string, 0, len(codes))
	for _, code := range codes {
		total += byCode[code]
		parts = append(parts, fmt.Sprintf("%s %d", code, byCode[code]))
	}
	return fmt.Sprintf("%d (%s)", total, strings.Join(parts, ", "))
}
