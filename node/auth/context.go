package auth

import "context"

type identityKey struct{}

// WithIdentity returns a copy of ctx carrying id, so plain net/http handlers
// mounted behind the API's authentication (the console's WebSocket hub) can
// learn who the caller is.
func WithIdentity(ctx context.Context, id Identity) context.Context {
	return context.WithValue(ctx, identityKey{}, id)
}

// FromContext returns the identity stored by WithIdentity; ok is false when
// the request was not authenticated.
func FromContext(ctx context.Context) (id Identity, ok bool) {
	id, ok = ctx.Value(identityKey{}).(Identity)
	return id, ok
}
