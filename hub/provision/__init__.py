"""Installers' side of the hub: provisioning a home's gateway, test mode, walk test, sign-off.

``models`` (tables), ``plan`` (what a gateway's registry rows say it should run, pure
checks), ``service`` (database steps), ``walktest`` (pure evaluation of a walk test),
``publish`` (the retained Config on the gateway's downlink).
"""
