"""tiny_tool: prints the six version it runs with (a fixture of tests/basecamp/test_project_detect.py)."""
