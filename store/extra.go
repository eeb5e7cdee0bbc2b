package store

// applyExtra dispatches command types owned by other files of this package
// (the registry's records). ok is false for an unknown type.
func (a *applier) applyExtra(c Command) (res any, err error, ok bool) {
	if res, err, ok := a.applyRegistry(c); ok {
		return res, err, true
	}
	if res, err, ok := a.applyCluster(c); ok {
		return res, err, true
	}
	if res, err, ok := a.applyBlobLoc(c); ok {
		return res, err, true
	}
	if res, err, ok := a.applySchedule(c); ok {
		return res, err, true
	}
	if res, err, ok := a.applyRetention(c); ok {
		return res, err, true
	}
	return nil, nil, false
}
