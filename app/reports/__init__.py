"""The QP release report of a shipment: JSON, CSV (the reading record), PDF and EPCIS 2.0."""
