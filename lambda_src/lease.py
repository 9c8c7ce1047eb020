def odi_handler(event, context):
    return None
def sfr_handler(event, context):
    return None
