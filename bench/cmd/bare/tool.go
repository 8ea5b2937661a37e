package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/google/jsonschema-go/jsonschema"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// loadTool reads the real server's golden definition of get_order_status:
// a JSON object in the shape of an MCP Tool (name, title, description,
// inputSchema, outputSchema, annotations), exactly what tools/list shows.
// The schemas are decoded as *jsonschema.Schema, which mcp.AddTool
// resolves once and validates every call's arguments and result against,
// as it does for the real server.
func loadTool(path string) (*mcp.Tool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("tool definition: %w", err)
	}
	var def mcp.Tool
	if err := json.Unmarshal(b, &def); err != nil {
		return nil, fmt.Errorf("tool definition %s: %w", path, err)
	}
	var schemas struct {
		Input  *jsonschema.Schema `json:"inputSchema"`
		Output *jsonschema.Schema `json:"outputSchema"`
	}
	if err := json.Unmarshal(b, &schemas); err != nil {
		return nil, fmt.Errorf("tool definition %s: %w", path, err)
	}
	if def.Name != "get_order_status" || schemas.Input == nil || schemas.Output == nil {
		return nil, fmt.Errorf("tool definition %s: want get_order_status with input and output schemas", path)
	}
	def.InputSchema, def.OutputSchema = schemas.Input, schemas.Output
	return &def, nil
}
