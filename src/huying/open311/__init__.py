"""Open311 GeoReport v2 at /open311/v2: the call list as services, requests in and out in
JSON and XML, the public view only. A facade over the requests and the directory."""
