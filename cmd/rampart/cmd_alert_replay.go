package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/rampart-soar/rampart/server/ingest"
)

func newAlertReplayCmd() *cobra.Command {
	var r alertReplay
	var outFile string
	cmd := &cobra.Command{
		Use:   "replay FILE",
		Short: "Send a recorded stream of alerts (NDJSON) to the webhooks, in order",
		Long: `replay posts every line of FILE (NDJSON; - reads stdin) to its webhook source,
signed as send signs. A line is either a record {"source": S, "payload": {…}} — the
shape of ../shared/scenarios/week1.ndjson; its other fields (seq, time, truth) are
never sent — or a bare payload, sent to --source.

A delivery refused with 429 is sent again after the server's Retry-After, one that
fails with 5xx or a network error again with backoff, and one refused as a replay
(the same body already sent this second) again the next second, each time with a
fresh signature; other refusals are reported and the replay carries on. --speed
keeps the records' event times apart, divided by the factor (3600: an hour a
second); without it lines go as fast as they are accepted. --out writes one result
line per delivery (line, seq, status, alert_id, workflow_id, duplicate, error). The
exit code is 2 when any line was refused.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			in := io.Reader(os.Stdin)
			if args[0] != "-" {
				f, err := os.Open(args[0])
				if err != nil {
					return err
				}
				defer f.Close()
				in = f
			}
			if r.concurrency < 1 || r.speed < 0 || r.skip < 0 || r.limit < 0 {
				return errors.New("--concurrency must be at least 1, and --speed, --skip and --limit not negative")
			}
			var results *bufio.Writer
			if outFile != "" {
				f, err := os.Create(outFile)
				if err != nil {
					return err
				}
				defer f.Close()
				results = bufio.NewWriter(f)
				r.results = results
			}
			errOut := cmd.ErrOrStderr()
			if isTerminal(errOut) {
				r.progress = func(c replayCounts) { fmt.Fprint(errOut, "\r\033[K"+c.String()) }
			}
			counts, err := r.run(cmd.Context(), in)
			if results != nil {
				err = errors.Join(err, results.Flush())
			}
			if r.progress != nil {
				fmt.Fprint(errOut, "\r\033[K")
			}
			if counts.Sent > 0 || err == nil {
				counts.print(cmd.OutOrStdout()) // what was sent, even when the rest was not
			}
			if err != nil {
				return err
			}
			if counts.Refused > 0 {
				return exitError(2)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&r.source, "source", "", "webhook source for lines that are bare payloads")
	cmd.Flags().IntVar(&r.concurrency, "concurrency", 1, "deliveries in flight at once (1 keeps the file's order)")
	cmd.Flags().Float64Var(&r.speed, "speed", 0, "keep records' event times apart, divided by this factor (0: no pauses)")
	cmd.Flags().IntVar(&r.skip, "skip", 0, "lines to skip at the start")
	cmd.Flags().IntVar(&r.limit, "limit", 0, "lines to send at most (0: all)")
	cmd.Flags().StringVar(&outFile, "out", "", "write a result line per delivery to this file")
	r.signer.flags(cmd)
	return cmd
}

// alertReplay streams deliveries; its fields are the command's options.
type alertReplay struct {
	signer      webhookSigner
	source      string
	concurrency int
	speed       float64
	skip, limit int
	results     io.Writer          // result lines, when wanted
	progress    func(replayCounts) // after each delivery, when wanted
}

// A delivery that fails is sent again after a backoff from replayBackoff up to 8 s,
// at most replayMaxFailures times in all.
const (
	replayBackoff     = 250 * time.Millisecond
	replayMaxFailures = 10
)

// replayResult is one delivery's outcome, a line of --out.
type replayResult struct {
	Line       int             `json:"line"`
	Seq        json.RawMessage `json:"seq,omitempty"`
	Source     string          `json:"source"`
	Status     int             `json:"status"`
	AlertID    string          `json:"alert_id,omitempty"`
	WorkflowID string          `json:"workflow_id,omitempty"`
	Duplicate  bool            `json:"duplicate,omitempty"`
	Attempts   int             `json:"attempts"`
	Code       string          `json:"code,omitempty"`
	Error      string          `json:"error,omitempty"`
}

type replayCounts struct {
	Sent, Accepted, Duplicates, Refused int
	ByCode                              map[string]int
}

func (c replayCounts) String() string {
	return fmt.Sprintf("%d sent: %d accepted, %d duplicate(s), %d refused", c.Sent, c.Accepted, c.Duplicates, c.Refused)
}

func (c replayCounts) print(w io.Writer) {
	fmt.Fprintln(w, c.String())
	for _, code := range slices.Sorted(maps.Keys(c.ByCode)) {
		fmt.Fprintf(w, "  %s: %d\n", code, c.ByCode[code])
	}
}

// replayLine is a line to deliver.
type replayLine struct {
	n      int
	seq    json.RawMessage
	source string
	body   []byte
	at     time.Time // event time, when the record has one
}

func (r *alertReplay) run(ctx context.Context, in io.Reader) (replayCounts, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	lines := make(chan replayLine)
	results := make(chan replayResult)
	var wg sync.WaitGroup
	for range r.concurrency {
		wg.Go(func() {
			for l := range lines {
				results <- r.deliver(ctx, l)
			}
		})
	}
	var readErr error
	go func() {
		defer close(lines)
		readErr = r.read(ctx, in, lines)
	}()
	go func() {
		wg.Wait()
		close(results)
	}()

	counts := replayCounts{ByCode: map[string]int{}}
	var writeErr error
	var enc *json.Encoder
	if r.results != nil {
		enc = json.NewEncoder(r.results)
	}
	for res := range results {
		counts.Sent++
		switch {
		case res.Status != http.StatusAccepted:
			counts.Refused++
			counts.ByCode[res.Code]++
		case res.Duplicate:
			counts.Duplicates++
		default:
			counts.Accepted++
		}
		if enc != nil && writeErr == nil {
			if writeErr = enc.Encode(res); writeErr != nil {
				cancel()
			}
		}
		if r.progress != nil {
			r.progress(counts)
		}
	}
	// results is closed only after the reader has returned and closed lines.
	if writeErr == nil {
		writeErr = ctx.Err() // interrupted
	}
	return counts, errors.Join(readErr, writeErr)
}

// read hands out the lines to send, pausing between records when asked to.
func (r *alertReplay) read(ctx context.Context, in io.Reader, out chan<- replayLine) error {
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	var first time.Time
	start := time.Now()
	sent := 0
	for n := 1; sc.Scan(); n++ {
		text := bytes.TrimSpace(sc.Bytes())
		if n <= r.skip || len(text) == 0 {
			continue
		}
		if r.limit > 0 && sent == r.limit {
			return nil
		}
		l, err := r.parse(n, text)
		if err != nil {
			return err
		}
		if r.speed > 0 && !l.at.IsZero() {
			if first.IsZero() {
				first = l.at
			}
			wait := time.Until(start.Add(time.Duration(float64(l.at.Sub(first)) / r.speed)))
			if err := sleep(ctx, wait); err != nil {
				return nil
			}
		}
		select {
		case out <- l:
			sent++
		case <-ctx.Done():
			return nil
		}
	}
	return sc.Err()
}

func (r *alertReplay) parse(n int, text []byte) (replayLine, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(text, &fields); err != nil {
		return replayLine{}, fmt.Errorf("line %d: not a JSON object: %w", n, err)
	}
	l := replayLine{n: n, source: r.source, body: text} // a bare payload
	if payload := bytes.TrimSpace(fields["payload"]); len(payload) > 0 && payload[0] == '{' {
		var rec struct {
			Source string `json:"source"`
			Time   string `json:"time"`
		}
		if err := json.Unmarshal(text, &rec); err != nil {
			return replayLine{}, fmt.Errorf("line %d: a record's source and time must be strings: %w", n, err)
		}
		l = replayLine{n: n, seq: fields["seq"], source: rec.Source, body: payload}
		if rec.Time != "" {
			at, err := time.Parse(time.RFC3339Nano, rec.Time)
			if err != nil {
				return replayLine{}, fmt.Errorf("line %d: time %q is not RFC 3339", n, rec.Time)
			}
			l.at = at
		}
	}
	if l.source == "" {
		return replayLine{}, fmt.Errorf("line %d: no source: give the record a \"source\" or the command --source", n)
	}
	return l, nil
}

// deliver posts one line until it is accepted, refused for good, or out of
// attempts.
func (r *alertReplay) deliver(ctx context.Context, l replayLine) replayResult {
	res := replayResult{Line: l.n, Seq: l.seq, Source: l.source}
	backoff := replayBackoff
	failures := 0
	for {
		res.Attempts++
		wait, err := r.attempt(ctx, l, &res)
		if err == nil || wait == 0 {
			return res
		}
		if res.Code != "replayed_request" { // a wait for the next second is no failure
			if failures++; failures == replayMaxFailures {
				return res
			}
		}
		if wait < 0 { // no hint from the server: back off
			wait, backoff = backoff, min(2*backoff, 8*time.Second)
		}
		if sleep(ctx, wait) != nil {
			return res
		}
	}
}

// attempt sends l once. A nil error is an acceptance; otherwise wait says what
// to do: 0 give up, -1 retry after a backoff, more retry after that long.
func (r *alertReplay) attempt(ctx context.Context, l replayLine, res *replayResult) (time.Duration, error) {
	req, err := r.signer.request(ctx, l.source, l.body)
	if err != nil {
		res.Code, res.Error = "not_sent", err.Error()
		return 0, err
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		res.Status, res.Code, res.Error = 0, "network", err.Error()
		if ctx.Err() != nil {
			return 0, err
		}
		return -1, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	res.Status = resp.StatusCode
	if resp.StatusCode == http.StatusAccepted {
		var acc ingest.Accepted
		if err := json.Unmarshal(body, &acc); err != nil {
			res.Code, res.Error = "bad_answer", err.Error()
			return 0, err
		}
		res.AlertID, res.WorkflowID, res.Duplicate, res.Code, res.Error = acc.AlertID, acc.WorkflowID, acc.Duplicate, "", ""
		return 0, nil
	}
	var e struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	_ = json.Unmarshal(body, &e)
	res.Code, res.Error = e.Error.Code, e.Error.Message
	if res.Code == "" {
		res.Code = strconv.Itoa(resp.StatusCode)
	}
	err = fmt.Errorf("%d %s", resp.StatusCode, res.Code)
	switch {
	case resp.StatusCode == http.StatusTooManyRequests:
		if s, perr := strconv.Atoi(resp.Header.Get("Retry-After")); perr == nil && s > 0 {
			return time.Duration(s) * time.Second, err
		}
		return -1, err
	case resp.StatusCode >= 500:
		return -1, err
	case res.Code == "replayed_request":
		// The same body was accepted under the same signature this second (a tool
		// re-sending a finding): it is a new delivery, so sign it again next second.
		return time.Until(time.Now().Truncate(time.Second).Add(time.Second + 10*time.Millisecond)), err
	default:
		return 0, err
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
