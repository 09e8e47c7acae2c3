"""The register of a district: centers, workstations, homes, gateways and sensors."""
