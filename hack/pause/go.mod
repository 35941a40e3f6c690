module litellm-operator.local/pause

go 1.24
