package rostiv1

import (
	_ "embed"
)

// openAPI describes Routes(); a test keeps the two in step.
//
//go:embed openapi.json
var openAPI []byte
