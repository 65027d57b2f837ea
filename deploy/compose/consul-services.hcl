# Registered with explicit addresses (compose DNS names), so Consul answers
# <hex>.addr.dc1.consul targets that srvgate decodes without a query.
services {
  name = "web"
  tags = ["prod"]
  address = "web-prod"
  port = 5678
  check { http = "http://web-prod:5678/", interval = "5s" }
}
services {
  name = "web"
  id = "web-staging"
  tags = ["staging"]
  address = "web-staging"
  port = 5678
  check { http = "http://web-staging:5678/", interval = "5s" }
}
