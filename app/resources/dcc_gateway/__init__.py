"""Routes and schemas of this resource group."""
