package activities

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/rampart-soar/rampart/playbook"
	"github.com/rampart-soar/rampart/playbook/lint"
	"github.com/rampart-soar/rampart/store"
	"github.com/rampart-soar/rampart/triage"
	"github.com/rampart-soar/rampart/workflows"
)

// PlaybookVersions is the part of the store playbook selection reads.
type PlaybookVersions interface {
	EnabledPlaybooks(ctx context.Context) ([]store.PlaybookVersion, error)
	GetPlaybookVersion(ctx context.Context, name string, version int) (store.PlaybookVersion, error)
}

// Pin decodes a stored playbook version into what a run is pinned to.
func Pin(v store.PlaybookVersion) (workflows.PinnedPlaybook, error) {
	var def playbook.Playbook
	if err := json.Unmarshal([]byte(v.DefinitionJSON), &def); err != nil {
		return workflows.PinnedPlaybook{}, fmt.Errorf("playbook %s v%d: %w", v.Name, v.Version, err)
	}
	return Pinned(def, v.Version, v.Hash), nil
}

// Pinned is a definition as a run is pinned to it, with the zero outputs of its
// actions from the operation catalogue.
func Pinned(def playbook.Playbook, version int, hash string) workflows.PinnedPlaybook {
	return workflows.PinnedPlaybook{Definition: def, Version: version, Hash: hash, ZeroOutputs: def.ZeroOutputs(lint.Operations)}
}

// PinVersion pins a stored version (0: the latest) and the latest version of
// every playbook its calls reach.
func PinVersion(ctx context.Context, st PlaybookVersions, name string, version int) (workflows.PinnedPlaybook, map[string]workflows.PinnedPlaybook, error) {
	v, err := st.GetPlaybookVersion(ctx, name, version)
	if err != nil {
		return workflows.PinnedPlaybook{}, nil, err
	}
	pinned, err := Pin(v)
	if err != nil {
		return workflows.PinnedPlaybook{}, nil, err
	}
	callees, err := PinCallees(ctx, st, []workflows.PinnedPlaybook{pinned})
	return pinned, callees, err
}

// Selection evaluates the triggers of the enabled playbooks on an alert, in
// priority order: a playbook with stop_on_match that matches ends the selection. A
// trigger that cannot be evaluated on this alert does not match, and says why. The
// playbooks the matches call are pinned too, whether enabled or not: a playbook
// may exist only to be called.
func Selection(ctx context.Context, st PlaybookVersions, env *playbook.Env, now time.Time) (workflows.SelectOutput, error) {
	enabled, err := st.EnabledPlaybooks(ctx)
	if err != nil {
		return workflows.SelectOutput{}, err
	}
	out := workflows.SelectOutput{Configured: len(enabled) > 0}
	rt := playbook.NewRuntime()
	rt.SetNow(now)
	stopped := false
	for _, v := range enabled {
		tr := workflows.TriggerResult{Playbook: v.Name, Version: v.Version, Stopped: stopped}
		if !stopped {
			pinned, err := Pin(v)
			if err != nil {
				return workflows.SelectOutput{}, err
			}
			matched, err := rt.EvalBool(pinned.Definition.Trigger.When, env)
			if err != nil {
				tr.Error = err.Error()
			}
			tr.Matched = matched
			if matched {
				out.Playbooks = append(out.Playbooks, pinned)
				stopped = pinned.Definition.StopOnMatch
			}
		}
		out.Triggers = append(out.Triggers, tr)
	}
	out.Callees, err = PinCallees(ctx, st, out.Playbooks)
	return out, err
}

// PinCallees pins the latest stored version of every playbook the roots reach
// through call steps, whether enabled or not.
func PinCallees(ctx context.Context, st PlaybookVersions, roots []workflows.PinnedPlaybook) (map[string]workflows.PinnedPlaybook, error) {
	return CalleesOf(roots, func(name string) (workflows.PinnedPlaybook, bool, error) {
		v, err := st.GetPlaybookVersion(ctx, name, 0)
		if errors.Is(err, store.ErrNotFound) {
			return workflows.PinnedPlaybook{}, false, nil
		}
		if err != nil {
			return workflows.PinnedPlaybook{}, false, err
		}
		p, err := Pin(v)
		return p, err == nil, err
	})
}

// CalleesOf collects every playbook the roots reach through call steps, as
// lookup finds them. One lookup does not find is left out: its call step fails
// with a clear error, the rest of the run goes on.
func CalleesOf(roots []workflows.PinnedPlaybook, lookup func(name string) (workflows.PinnedPlaybook, bool, error)) (map[string]workflows.PinnedPlaybook, error) {
	var out map[string]workflows.PinnedPlaybook
	var queue []string
	for _, p := range roots {
		queue = append(queue, p.Definition.Callees()...)
	}
	for len(queue) > 0 {
		name := queue[0]
		queue = queue[1:]
		if _, done := out[name]; done {
			continue
		}
		pinned, ok, err := lookup(name)
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		if out == nil {
			out = map[string]workflows.PinnedPlaybook{}
		}
		out[name] = pinned
		queue = append(queue, pinned.Definition.Callees()...)
	}
	return out, nil
}

// SelectPlaybooks chooses the playbooks that respond to an alert and records the
// enrichment and the selection as the enrich and decide steps. With no playbook
// enabled it records nothing and says so: the alert is then decided by
// decide.contain_when.
func (a *Activities) SelectPlaybooks(ctx context.Context, in workflows.DecideInput) (workflows.SelectOutput, error) {
	env := &playbook.Env{Alert: in.Alert, Detect: in.Detection, Enrich: in.Enrichment}
	sel, err := Selection(ctx, a.Store, env, in.EnrichFinished)
	if err != nil || !sel.Configured {
		return sel, err
	}
	now := time.Now()
	decision := map[string]any{"playbooks": sel.Triggers, "matched": len(sel.Playbooks)}
	err = a.Store.InTx(ctx, func(tx *store.Store) error {
		if err := a.recordEnrich(ctx, tx, in.Ref, in.Enrichment, in.EnrichStarted, in.EnrichFinished); err != nil {
			return err
		}
		if err := tx.UpdateAlert(ctx, in.Ref.AlertID, store.AlertUpdate{
			EnrichmentJSON: jsonText(in.Enrichment),
			DecisionJSON:   jsonText(decision),
		}); err != nil {
			return err
		}
		return saveStep(ctx, tx, in.Ref, workflows.StageDecide, store.StatusSucceeded, in.DecideStarted, &now,
			map[string]any{"enabled": len(sel.Triggers)}, decision, "")
	})
	if err != nil {
		return workflows.SelectOutput{}, err
	}
	return sel, nil
}

// DecideResponse decides how an alert is answered, in one local activity: by the
// playbooks whose triggers match (SelectPlaybooks) or, with no playbook enabled,
// by decide.contain_when (Decide).
func (a *Activities) DecideResponse(ctx context.Context, in workflows.DecideInput) (workflows.ResponseDecision, error) {
	sel, err := a.SelectPlaybooks(ctx, in)
	if err != nil || sel.Configured {
		return workflows.ResponseDecision{Selection: sel}, err
	}
	v, claimed, err := a.decide(ctx, in, true)
	if err != nil {
		return workflows.ResponseDecision{}, err
	}
	d := workflows.ResponseDecision{Selection: sel, Verdict: &v}
	if claimed {
		d.ClaimedAction = in.Contain.IdempotencyKey
	}
	return d, nil
}

// recordEnrich records the enrich step: failed when a lookup failed.
func (a *Activities) recordEnrich(ctx context.Context, tx *store.Store, ref workflows.AlertRef, e triage.Enrichment, started, finished time.Time) error {
	status, stepErr := store.StatusSucceeded, ""
	if !e.Complete {
		status, stepErr = store.StatusFailed, fmt.Sprint(e.Errors)
	}
	return saveStep(ctx, tx, ref, workflows.StageEnrich, status, started, &finished, nil, e, stepErr)
}
