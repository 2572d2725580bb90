package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/rampart-soar/rampart/playbook"
	"github.com/rampart-soar/rampart/playbook/lint"
	"github.com/rampart-soar/rampart/store"
)

// PlaybookStore is the part of the store the playbook endpoints use.
type PlaybookStore interface {
	ApplyPlaybook(ctx context.Context, name, hash, source, definitionJSON string, priority int, description string, enabled bool) (store.ApplyResult, error)
	ListPlaybooks(ctx context.Context) ([]store.Playbook, error)
	GetPlaybook(ctx context.Context, name string) (store.Playbook, []store.PlaybookVersion, error)
	GetPlaybookVersion(ctx context.Context, name string, version int) (store.PlaybookVersion, error)
	SetPlaybookEnabled(ctx context.Context, name string, enabled bool) error
}

// Applied is one playbook file's apply outcome.
type Applied struct {
	File        string            `json:"file"`
	Name        string            `json:"name,omitempty"`
	Version     int               `json:"version,omitempty"`
	Created     bool              `json:"created"`
	Diagnostics []lint.Diagnostic `json:"diagnostics,omitempty"`
}

// ErrLint means at least one playbook has problems; nothing was applied.
var ErrLint = errors.New("playbooks have problems: nothing applied")

// ApplyPlaybooks lints the files and, when every one is clean, stores each as a new
// version of its playbook if its definition changed. Calls may name playbooks in
// the same batch or already stored. It is all or nothing: with any problem it
// returns ErrLint and the diagnostics, and stores nothing.
func ApplyPlaybooks(ctx context.Context, st PlaybookStore, files []lint.File) ([]Applied, error) {
	stored := func(name string) (*playbook.Playbook, bool) {
		v, err := st.GetPlaybookVersion(ctx, name, 0)
		if err != nil {
			return nil, false
		}
		var pb playbook.Playbook
		if json.Unmarshal([]byte(v.DefinitionJSON), &pb) != nil {
			return nil, false
		}
		return &pb, true
	}
	results := lint.Sources(files, stored)
	out := make([]Applied, len(results))
	clean := true
	for i, r := range results {
		out[i] = Applied{File: r.File, Diagnostics: r.Problems}
		if r.Playbook != nil {
			out[i].Name = r.Playbook.Name
		}
		clean = clean && r.OK()
	}
	if !clean {
		return out, ErrLint
	}
	for i, r := range results {
		def, hash, err := playbook.Canonical(r.Playbook)
		if err != nil {
			return out, err
		}
		priority := r.Playbook.Priority
		if priority == 0 {
			priority = 100
		}
		res, err := st.ApplyPlaybook(ctx, r.Playbook.Name, hash, string(files[i].Data), string(def), priority, r.Playbook.Description, r.Playbook.IsEnabled())
		if err != nil {
			return out, err
		}
		out[i].Version, out[i].Created = res.Version, res.Created
	}
	return out, nil
}

// PlaybookView is a playbook in the API.
type PlaybookView struct {
	Name          string        `json:"name"`
	LatestVersion int           `json:"latest_version"`
	Enabled       bool          `json:"enabled"`
	Priority      int           `json:"priority"`
	Description   string        `json:"description,omitempty"`
	UpdatedAt     time.Time     `json:"updated_at"`
	Versions      []VersionView `json:"versions,omitempty"`
}

// VersionView is one version of a playbook.
type VersionView struct {
	Version    int                `json:"version"`
	Hash       string             `json:"hash"`
	CreatedAt  time.Time          `json:"created_at"`
	Source     string             `json:"source,omitempty"`
	Definition *playbook.Playbook `json:"definition,omitempty"`
}

func playbookView(pb store.Playbook) PlaybookView {
	return PlaybookView{Name: pb.Name, LatestVersion: pb.LatestVersion, Enabled: pb.Enabled, Priority: pb.Priority,
		Description: pb.Description, UpdatedAt: pb.UpdatedAt}
}

func (s *Server) listPlaybooks(c echo.Context) error {
	rows, err := s.opts.Playbooks.ListPlaybooks(c.Request().Context())
	if err != nil {
		return err
	}
	out := make([]PlaybookView, 0, len(rows))
	for _, pb := range rows {
		out = append(out, playbookView(pb))
	}
	return c.JSON(http.StatusOK, map[string]any{"playbooks": out})
}

// applyPlaybook stores the body (one playbook, YAML or JSON) as a new version.
func (s *Server) applyPlaybook(c echo.Context) error {
	file, body, err := playbookBody(c)
	if err != nil {
		return err
	}
	applied, err := ApplyPlaybooks(c.Request().Context(), s.opts.Playbooks, []lint.File{{Name: file, Data: body}})
	if errors.Is(err, ErrLint) {
		return c.JSON(http.StatusUnprocessableEntity, map[string]any{"error": map[string]any{
			"code": "invalid_playbook", "message": "the playbook has problems; nothing was applied", "details": applied[0].Diagnostics,
		}})
	}
	if err != nil {
		return err
	}
	status := http.StatusOK
	if applied[0].Created {
		status = http.StatusCreated
	}
	return c.JSON(status, applied[0])
}

func (s *Server) getPlaybook(c echo.Context) error {
	pb, versions, err := s.opts.Playbooks.GetPlaybook(c.Request().Context(), c.Param("name"))
	if errors.Is(err, store.ErrNotFound) {
		return apiError(http.StatusNotFound, "not_found", "no such playbook")
	}
	if err != nil {
		return err
	}
	v := playbookView(pb)
	for _, ver := range versions {
		v.Versions = append(v.Versions, VersionView{Version: ver.Version, Hash: ver.Hash, CreatedAt: ver.CreatedAt})
	}
	return c.JSON(http.StatusOK, v)
}

func (s *Server) getPlaybookVersion(c echo.Context) error {
	n, err := strconv.Atoi(c.Param("version"))
	if err != nil || n < 1 {
		return apiError(http.StatusBadRequest, "invalid_path", "the version is a number from 1")
	}
	v, err := s.opts.Playbooks.GetPlaybookVersion(c.Request().Context(), c.Param("name"), n)
	if errors.Is(err, store.ErrNotFound) {
		return apiError(http.StatusNotFound, "not_found", "no such playbook version")
	}
	if err != nil {
		return err
	}
	var def playbook.Playbook
	if err := json.Unmarshal([]byte(v.DefinitionJSON), &def); err != nil {
		return fmt.Errorf("playbook %s v%d: stored definition: %w", v.Name, v.Version, err)
	}
	return c.JSON(http.StatusOK, VersionView{Version: v.Version, Hash: v.Hash, CreatedAt: v.CreatedAt, Source: v.Source, Definition: &def})
}

// playbookAction serves POST /api/v1/playbooks/{name}:enable and :disable.
func (s *Server) playbookAction(c echo.Context) error {
	name, action, ok := strings.Cut(c.Param("target"), ":")
	if !ok || (action != "enable" && action != "disable") {
		return apiError(http.StatusNotFound, "not_found", "use /api/v1/playbooks/{name}:enable or :disable")
	}
	err := s.opts.Playbooks.SetPlaybookEnabled(c.Request().Context(), name, action == "enable")
	if errors.Is(err, store.ErrNotFound) {
		return apiError(http.StatusNotFound, "not_found", "no such playbook")
	}
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"name": name, "enabled": action == "enable"})
}

// LintResult is the answer of POST /api/v1/playbooks:lint.
type LintResult struct {
	OK          bool              `json:"ok"`
	Name        string            `json:"name,omitempty"`
	Diagnostics []lint.Diagnostic `json:"diagnostics"`
}

var playbookFileName = regexp.MustCompile(`^[A-Za-z0-9._-]{1,128}$`)

// playbookBody reads a playbook sent as the body (YAML or JSON); ?file= names it in
// diagnostics.
func playbookBody(c echo.Context) (string, []byte, error) {
	req := c.Request()
	mt, _, err := mime.ParseMediaType(req.Header.Get("Content-Type"))
	if err != nil || !(mt == "application/json" || mt == "application/yaml" || mt == "application/x-yaml" || mt == "text/yaml" || mt == "text/x-yaml") {
		return "", nil, apiError(http.StatusUnsupportedMediaType, "unsupported_media_type", "send the playbook as application/yaml or application/json")
	}
	file := c.QueryParam("file")
	if file == "" {
		file = "playbook.yaml"
	}
	if !playbookFileName.MatchString(file) {
		return "", nil, apiError(http.StatusBadRequest, "invalid_query", "file must be a plain file name")
	}
	body, err := io.ReadAll(http.MaxBytesReader(c.Response(), req.Body, 1<<20))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return "", nil, apiError(http.StatusRequestEntityTooLarge, "body_too_large", "a playbook is at most 1 MiB")
		}
		return "", nil, apiError(http.StatusBadRequest, "unreadable_body", "the request body could not be read")
	}
	return file, body, nil
}

// lintPlaybook checks one playbook sent as the body and answers with its
// positioned diagnostics.
func (s *Server) lintPlaybook(c echo.Context) error {
	file, body, err := playbookBody(c)
	if err != nil {
		return err
	}
	r := lint.Source(file, body, nil)
	out := LintResult{OK: r.OK(), Diagnostics: r.Problems}
	if out.Diagnostics == nil {
		out.Diagnostics = []lint.Diagnostic{}
	}
	if r.Playbook != nil {
		out.Name = r.Playbook.Name
	}
	return c.JSON(http.StatusOK, out)
}
