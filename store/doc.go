// Package store owns rosti's persistent state: one bbolt file holding the
// domain model as JSON values, with index buckets for unique names. It knows
// nothing of HTTP, containers or SSH, imports none of rosti's other packages,
// and never lets a bbolt error escape: callers see ErrNotFound, ErrConflict
// or ErrInvalid, wrapped with %w.
//
// Bucket tree (schema version 8):
//
//	meta                 "schema" -> version (decimal string)
//	users                id(8)   -> User
//	users_by_name        name    -> id(8)
//	users_by_folded_name lower-case name -> id(8)  (schema 8; names ignore case: usernames.go)
//	tokens               sha256  -> Token
//	companies            id(8)   -> Company
//	memberships          user id(8) ++ company id(8) -> Role
//	plans                id(8)   -> Plan
//	runtimes             id(8)   -> Runtime
//	apps                 id(8)   -> App
//	apps_by_name         name    -> id(8)
//	company_apps         company id(8) ++ app id(8) -> empty
//	domains              host name -> app id(8)
//	keys                 id(8)   -> Key                       (schema 2)
//	keys_by_fingerprint  fingerprint ++ 0 ++ user id(8) -> key id(8)  (schema 2)
//	jobs                 id(8)   -> Job                       (schema 3)
//	company_jobs         company id(8) ++ job id(8) -> empty  (schema 3)
//	releases             app id(8) ++ version(8) -> Release   (schema 4)
//	storages             id(8)   -> Storage                   (schema 5)
//	company_storages     company id(8) ++ storage id(8) -> empty  (schema 5)
//	sessions             sha256 of the cookie's secret -> Session  (schema 6)
//	two_factor           user id(8) -> TwoFactor             (schema 6)
//	settings             "settings" -> Settings              (schema 6)
//	app_perms            app id(8) ++ user id(8) -> empty     (schema 7)
//	user_app_perms       user id(8) ++ app id(8) -> empty     (schema 7)
//	certs                id(8)   -> Cert                      (schema 7)
//	certs_by_name        company id(8) ++ name -> cert id(8)  (schema 7)
//
// Ids come from each bucket's sequence and are never reused, so an app's uid
// (derived from its id) never passes to another app.
package store
