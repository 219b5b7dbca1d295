// Package platform holds the use cases every face of rosti shares: accounts
// and tokens, companies, the plan and runtime catalogue, apps and storages.
// The REST dialects, the SSH gateway, the web UI and the command line call
// it; it calls the store, and (through interfaces it declares) the runtime,
// the proxy and the database servers. It never speaks HTTP and never formats a response: it returns
// store's domain types and errors from the shared vocabulary (store.ErrNotFound,
// ErrConflict, ErrInvalid, and the auth errors below), wrapped with %w.
//
// Tenancy is enforced here, not in the faces: every call that names a
// company or an app is given the acting user and answers ErrNotFound for
// objects of a company the user is not a member of.
package platform
