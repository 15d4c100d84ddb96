import six

print(f"tiny_tool with six {six.__version__}")
