package server

import (
	"errors"
	"io"
	"mime"
	"net/http"
	"regexp"

	"github.com/labstack/echo/v4"

	"github.com/rampart-soar/rampart/playbook/lint"
)

// LintResult is the answer of POST /api/v1/playbooks:lint.
type LintResult struct {
	OK          bool              `json:"ok"`
	Name        string            `json:"name,omitempty"`
	Diagnostics []lint.Diagnostic `json:"diagnostics"`
}

var lintFileName = regexp.MustCompile(`^[A-Za-z0-9._-]{1,128}$`)

// lintPlaybook checks one playbook sent as the body (YAML or JSON) and answers
// with its positioned diagnostics. ?file= names the file in them.
func (s *Server) lintPlaybook(c echo.Context) error {
	req := c.Request()
	mt, _, err := mime.ParseMediaType(req.Header.Get("Content-Type"))
	if err != nil || !(mt == "application/json" || mt == "application/yaml" || mt == "application/x-yaml" || mt == "text/yaml" || mt == "text/x-yaml") {
		return apiError(http.StatusUnsupportedMediaType, "unsupported_media_type", "send the playbook as application/yaml or application/json")
	}
	file := c.QueryParam("file")
	if file == "" {
		file = "playbook.yaml"
	}
	if !lintFileName.MatchString(file) {
		return apiError(http.StatusBadRequest, "invalid_query", "file must be a plain file name")
	}
	body, err := io.ReadAll(http.MaxBytesReader(c.Response(), req.Body, 1<<20))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return apiError(http.StatusRequestEntityTooLarge, "body_too_large", "a playbook is at most 1 MiB")
		}
		return apiError(http.StatusBadRequest, "unreadable_body", "the request body could not be read")
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
