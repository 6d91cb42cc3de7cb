"""pgolf for coding agents: the PreToolUse hook, the MCP server and the set-up writers.

`hook` is imported on every tool call an agent makes, so it uses the standard library only and this
package's `__init__` imports nothing.
"""
