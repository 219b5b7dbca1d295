//go:build rostiinit

package initbin

import _ "embed"

//go:embed rosti-init
var embedded []byte
