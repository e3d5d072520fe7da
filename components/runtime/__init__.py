"""How the lab runs a service: described once (`spec`), rendered for Docker or Kubernetes, charts installed
the one way (`helm`), every pod under the restricted Pod Security settings (`restricted`)."""
