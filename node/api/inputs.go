package api

import (
	"context"
	"strings"

	"gantry/store"
)

// pinInputs resolves each input of spec to the manifest digest its
// reference names now, through the registry's own gate: an input that
// does not exist or that user may not read is refused as not found, one
// whose licence user has not accepted (or whose access is pending,
// rejected, taken down) with that refusal's code, each naming the input.
// A reference without an owner is the user's own repository.
func (a *API) pinInputs(ctx context.Context, spec *store.JobSpec, user string, admin bool) error {
	if len(spec.Inputs) == 0 {
		return nil
	}
	if a.cfg.Images == nil && !onlyJobInputs(spec.Inputs) {
		return store.Errorf(store.EUnavailable, "inputs: this node has no registry")
	}
	for i := range spec.Inputs {
		in := &spec.Inputs[i]
		ref := in.Ref
		if in.Job != "" {
			// Another job's outputs: checked by the store against that job
			// and pinned per task when each starts.
			continue
		}
		if name, _, _ := strings.Cut(ref, "@"); !strings.Contains(name, "/") {
			ref = user + "/" + ref
		}
		local, ok := a.cfg.Images.LocalRef(ref)
		if !ok {
			return store.Errorf(store.EInvalid, "input %s: inputs come from Gantry's own registry (gantry data push)", in.Ref)
		}
		repo, d, err := a.cfg.Images.Resolve(ctx, user, admin, local)
		switch code := store.ErrorCode(err); {
		case err == nil:
		case code == store.ENotFound:
			return store.Errorf(store.EInvalid, "input %s not found (push it with gantry data push, or check that you may read it)", in.Ref)
		case code == store.EInvalid || store.Refused(code):
			return store.Errorf(code, "input %s: %s", in.Ref, store.ErrorMessage(err))
		default:
			return err
		}
		in.Repo, in.Digest = repo, d
	}
	return nil
}

func onlyJobInputs(in []store.Input) bool {
	for _, x := range in {
		if x.Job == "" {
			return false
		}
	}
	return true
}
