"""Test support shared by every test folder: template queries, gates, moto extensions."""
