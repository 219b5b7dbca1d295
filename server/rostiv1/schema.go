package rostiv1

import (
	_ "embed"
	"net/http"
)

// openAPI describes Routes(); a test keeps the two in step.
//
//go:embed openapi.json
var openAPI []byte

func serveSchema(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/vnd.oai.openapi+json")
	_, _ = w.Write(openAPI)
}
