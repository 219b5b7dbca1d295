//go:build !rostiinit

package initbin

// embedded is empty: this build carries no init binary of its own.
var embedded string

const embeddedByBuild = false
