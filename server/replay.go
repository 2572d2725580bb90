package server

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/rampart-soar/rampart/playbook"
	"github.com/rampart-soar/rampart/store"
)

// Replayer runs a playbook version in dry-run against recorded alerts and
// compares it with what ran (shadow replay).
type Replayer interface {
	// Replay calls progress after each alert, in order.
	Replay(ctx context.Context, req ReplayRequest, progress func(ReplayAlert)) (ReplayReport, error)
}

// ReplayRequest names the version and the alerts: those received in the last
// Since, or the ones listed.
type ReplayRequest struct {
	Playbook string        `json:"playbook"`
	Version  int           `json:"version"`
	Since    time.Duration `json:"-"`
	AlertIDs []string      `json:"alerts,omitempty"`
	// Limit bounds how many alerts (newest first); at most MaxReplayAlerts.
	Limit int `json:"limit,omitempty"`
}

// MaxReplayAlerts bounds one replay.
const MaxReplayAlerts = 1000

// Replay verdicts.
const (
	ReplaySame       = "same"
	ReplayChanged    = "changed"
	ReplayNewFailure = "new_failure"
	// ReplayInFlight is an alert still being handled (a run waiting for an
	// approval, say): nothing final to compare with, so only the replay is shown.
	ReplayInFlight = "in_flight"
	// ReplayNotFound is an alert id the store does not know.
	ReplayNotFound = "not_found"
)

// ReplayAlert compares, for one alert, the version that ran with the replayed one.
type ReplayAlert struct {
	Index      int        `json:"index"`
	Total      int        `json:"total"`
	AlertID    string     `json:"alert_id"`
	Title      string     `json:"title"`
	ReceivedAt time.Time  `json:"received_at"`
	Verdict    string     `json:"verdict"` // same, changed, new_failure, in_flight or not_found
	Ran        ReplaySide `json:"ran"`
	Replayed   ReplaySide `json:"replayed"`
	// Differences say what changed, in words.
	Differences []string `json:"differences,omitempty"`
	// Notes say where the replay had to assume: a read it had no recording of, an
	// approval no one had answered.
	Notes []string `json:"notes,omitempty"`
}

// ReplaySide is one version's decisions on an alert.
type ReplaySide struct {
	// Version is 0 when no version of the playbook ran on the alert.
	Version   int    `json:"version,omitempty"`
	Triggered bool   `json:"triggered"`
	Status    string `json:"status,omitempty"`
	Message   string `json:"message,omitempty"`
	// Steps are the steps taken with their status: the path of decisions.
	Steps []string `json:"steps,omitempty"`
	// Actions are the contain and notify operations, with their inputs.
	Actions []string `json:"actions,omitempty"`
}

// ReplaySummary counts the verdicts.
type ReplaySummary struct {
	Alerts      int `json:"alerts"`
	Same        int `json:"same"`
	Changed     int `json:"changed"`
	NewFailures int `json:"new_failures"`
	InFlight    int `json:"in_flight"`
	NotFound    int `json:"not_found"`
}

// ReplayReport is a whole replay.
type ReplayReport struct {
	Playbook string        `json:"playbook"`
	Version  int           `json:"version"`
	Alerts   []ReplayAlert `json:"alerts"`
	Summary  ReplaySummary `json:"summary"`
}

// replayBody is the body of POST /api/v1/playbooks/{name}/versions/{n}:replay.
type replayBody struct {
	Since  string   `json:"since"`
	Alerts []string `json:"alerts"`
	Limit  int      `json:"limit"`
}

// replayVersion serves POST /api/v1/playbooks/{name}/versions/{n}:replay. With
// Accept: application/x-ndjson it streams one line per alert as it is replayed,
// then the summary; otherwise it answers with the whole report.
func (s *Server) replayVersion(c echo.Context) error {
	v, action, ok := strings.Cut(c.Param("target"), ":")
	if !ok || action != "replay" {
		return apiError(http.StatusNotFound, "not_found", "use POST /api/v1/playbooks/{name}/versions/{n}:replay")
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return apiError(http.StatusBadRequest, "invalid_path", "the version is a number from 1")
	}
	var body replayBody
	if c.Request().ContentLength != 0 {
		if err := decodeJSON(c, &body); err != nil {
			return err
		}
	}
	req := ReplayRequest{Playbook: c.Param("name"), Version: n, AlertIDs: body.Alerts, Limit: body.Limit}
	switch {
	case body.Since != "" && len(body.Alerts) > 0:
		return apiError(http.StatusBadRequest, "invalid_body", "give since or alerts, not both")
	case len(body.Alerts) > MaxReplayAlerts:
		return apiError(http.StatusBadRequest, "invalid_body", "at most "+strconv.Itoa(MaxReplayAlerts)+" alerts")
	case body.Limit < 0 || body.Limit > MaxReplayAlerts:
		return apiError(http.StatusBadRequest, "invalid_body", "limit is a number from 1 to "+strconv.Itoa(MaxReplayAlerts))
	case slices.Contains(body.Alerts, ""):
		return apiError(http.StatusBadRequest, "invalid_body", "an alert id is empty")
	case len(body.Alerts) == 0:
		since := body.Since
		if since == "" {
			since = "24h"
		}
		d, err := playbook.ParseDuration(since)
		if err != nil || d <= 0 {
			return apiError(http.StatusBadRequest, "invalid_body", "since is a duration such as 24h or 7d")
		}
		req.Since = d
	}
	ctx := c.Request().Context()
	if _, err := s.opts.Playbooks.GetPlaybookVersion(ctx, req.Playbook, n); errors.Is(err, store.ErrNotFound) {
		return apiError(http.StatusNotFound, "not_found", "no such playbook version")
	} else if err != nil {
		return err
	}
	if !strings.Contains(c.Request().Header.Get("Accept"), "application/x-ndjson") {
		report, err := s.opts.Replayer.Replay(ctx, req, nil)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, report)
	}
	resp := c.Response()
	resp.Header().Set(echo.HeaderContentType, "application/x-ndjson")
	resp.WriteHeader(http.StatusOK)
	enc := json.NewEncoder(resp)
	report, err := s.opts.Replayer.Replay(ctx, req, func(a ReplayAlert) {
		_ = enc.Encode(map[string]any{"alert": a})
		resp.Flush()
	})
	if err != nil {
		s.log.Error("replay failed", "playbook", req.Playbook, "version", n, "error", err)
		return enc.Encode(map[string]any{"error": map[string]string{"code": "replay_failed", "message": "the replay stopped; the server log says why"}})
	}
	return enc.Encode(map[string]any{"summary": report.Summary, "playbook": report.Playbook, "version": report.Version})
}
