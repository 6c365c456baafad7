"""Simulated shipper data loggers, lanes and scenarios that publish over MQTT like real ones."""
