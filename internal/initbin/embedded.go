//go:build rostiinit

package initbin

import _ "embed"

// A string, so that it is read-only data of the binary, which release may
// drop from memory after the install.
//
//go:embed rosti-init
var embedded string

const embeddedByBuild = true
